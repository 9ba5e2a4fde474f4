# The types of windows.py's structures where Cython compiles it (switch/compiled.py): each an
# extension type with its fields in C, and an event's positions C integers, so that a request's
# counts, takes and expiry run without the interpreter. windows.py stays plain Python, and runs
# as such without a compiler; only what Python code outside reads is readable (`readonly`).
import cython

cdef Py_ssize_t _AT, _AMOUNT, _TOTALS, _KEY, _WINDOW


cdef class SlidingTotals:
    cdef readonly object span, name, max_count, max_amount
    cdef dict _keys
    cdef list _events
    cdef Py_ssize_t _head
    cdef object latest

    @cython.locals(keys=dict, totals=list, event=list)
    cpdef list add(self, key, now, amount)
    @cython.locals(event=list, totals=list)
    cpdef object count(self, key, now, amount, list reserved)
    cpdef place(self, list event)
    cpdef forget(self, now)
    @cython.locals(totals=list)
    cpdef retract(self, list event)
    @cython.locals(events=list, keys=dict, event=list, totals=list, head=Py_ssize_t, end=Py_ssize_t)
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
