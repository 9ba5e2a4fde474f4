# The C types of fastcodec.py's compiled codec where Cython compiles it (switch/compiled.py):
# lengths, positions and a field's plan read as C integers, the message text as a str sliced
# directly. fastcodec.py stays plain Python and runs as such without a compiler. A decoded
# value is typed as text (the decoder makes it); a value given to encode is not: a caller may
# hand a str subclass (a response code), which a typed variable would refuse where Python takes it.
import cython

# A plan's data and length kinds, as C constants: compared for every field.
cdef int ASCII, HEX, BCD, CODEPAGE
cdef int ASCII_LENGTH, BINARY_LENGTH, BCD_LENGTH


@cython.final
cdef class CompiledSpec:
    cdef readonly int mti_kind
    cdef readonly str mti_codec
    cdef readonly Py_ssize_t mti_len
    cdef readonly bint binary_bitmap, secondary
    cdef list _reading
    cdef dict _writing
    cdef readonly dict _layouts  # read by its test: how many field sets are kept

    cdef object _read_bitmap(self, s, Py_ssize_t pos)

    cdef object _read_mti(self, s)

    @cython.locals(pos=Py_ssize_t, width=Py_ssize_t, end=Py_ssize_t, size=Py_ssize_t, end_of_message=Py_ssize_t,
                   len_type=Py_ssize_t, longest=Py_ssize_t, kind=int, len_kind=int, index=Py_ssize_t, byte=int,
                   text=str, fields=dict, reading=list, plans=tuple, key=str, value=str)
    cpdef object decode(self, s)

    @cython.locals(size=Py_ssize_t, len_type=Py_ssize_t, longest=Py_ssize_t, kind=int, len_kind=int, out=list, plans=tuple)
    cpdef object encode(self, mti, fields)
