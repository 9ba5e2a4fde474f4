# The C types of framing.py's Framer where Cython compiles it (switch/compiled.py): its buffer
# a bytearray and its positions C integers, for the loop every frame from a socket goes through.
# framing.py stays plain Python and runs as such without a compiler.
import cython


@cython.final
cdef class Frame:
    cdef public object payload, header


@cython.final
cdef class Framer:
    cdef readonly object profile
    cdef readonly Py_ssize_t max_frame
    cdef bytearray _buffer
    cdef Py_ssize_t _min_body, _prefix_size
    cdef bint _binary2, _etx
    cdef object _header

    @cython.locals(frames=list, prefix_size=Py_ssize_t, buffer=bytearray, start=Py_ssize_t, size=Py_ssize_t,
                   end=Py_ssize_t)
    cpdef list feed(self, data)

    cdef object _split(self, bytes body)
