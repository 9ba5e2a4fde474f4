# The type of message.py's Message where Cython compiles it (switch/compiled.py): an extension
# type, made and read without the interpreter (several a transaction). message.py stays plain
# Python and runs as such without a compiler. Its two fields hold any object, as in Python.
import cython


@cython.final
cdef class Message:
    cdef public object mti, fields
