# The types of windows.py's structures where Cython compiles it (switch/compiled.py): each an
# extension type with its fields in C (`final`: its methods called directly), so that a
# request's counts, takes and expiry run without the interpreter. windows.py stays plain
# Python, and runs as such without a compiler; only what Python code outside reads is
# readable (`readonly`). Totals and Event hold C values only, so the cyclic collector never
# tracks them (a velocity key is text: a PAN hash, a terminal or a merchant id; an amount is
# field 4's twelve digits at most).
import cython


@cython.final
cdef class Totals:
    cdef public long long count, amount


@cython.final
cdef class Event:
    cdef public double at
    cdef public long long amount
    cdef public str key
    cdef public bint counted


@cython.final
cdef class SlidingTotals:
    cdef readonly object span, name, max_count, max_amount
    cdef dict _keys
    cdef list _events
    cdef Py_ssize_t _head
    cdef object latest

    @cython.locals(keys=dict, totals=Totals, event=Event)
    cpdef Event add(self, key, now, amount)
    @cython.locals(event=Event, totals=Totals)
    cpdef object count(self, key, now, amount, list reserved)
    cpdef place(self, Event event)
    cpdef forget(self, now)
    @cython.locals(totals=Totals)
    cpdef retract(self, Event event)
    @cython.locals(events=list, keys=dict, event=Event, totals=Totals, head=Py_ssize_t, end=Py_ssize_t)
    cdef _expire(self, horizon)


cdef class DistinctWindow:
    cdef readonly object span
    cdef object _keys


cdef class Cooldowns:
    cdef readonly object length
    cdef readonly object until


cdef class TokenBuckets:
    cdef readonly object rate, burst, interval, tolerance
    cdef dict _due

    @cython.locals(dues=dict, due=double)
    cpdef bint take(self, key, double now)
    @cython.locals(dues=dict)
    cpdef forget(self, now)


cdef class LastSeen:
    cdef readonly object span
    cdef readonly dict last

    @cython.locals(last=dict)
    cpdef note(self, key, value, now)
    @cython.locals(last=dict)
    cpdef forget(self, now)
