# The types of windows.py's structures where Cython compiles it (switch/compiled.py): each an
# extension type with its fields in C (`final`: its methods called directly), so that a
# request's counts, takes and expiry run without the interpreter. windows.py stays plain Python, and runs
# as such without a compiler; only what Python code outside reads is readable (`readonly`).
import cython

cdef class SlidingTotals


@cython.final
@cython.freelist(64)
cdef class Event:
    cdef public object at, amount, key
    cdef public list totals
    cdef public SlidingTotals window


@cython.final
cdef class SlidingTotals:
    cdef readonly object span, name, max_count, max_amount
    cdef dict _keys
    cdef list _events
    cdef Py_ssize_t _head
    cdef object latest

    @cython.locals(keys=dict, totals=list, event=Event)
    cpdef Event add(self, key, now, amount)
    @cython.locals(event=Event, totals=list)
    cpdef object count(self, key, now, amount, list reserved)
    cpdef place(self, Event event)
    cpdef forget(self, now)
    @cython.locals(totals=list)
    cpdef retract(self, Event event)
    @cython.locals(events=list, keys=dict, event=Event, totals=list, head=Py_ssize_t, end=Py_ssize_t)
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
