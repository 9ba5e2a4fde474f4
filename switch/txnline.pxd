# Where Cython compiles txnline.py (switch/compiled.py): its text helper called directly by the
# line it builds, not through Python's calls. txnline.py stays plain Python.
cpdef str json_text(object value)
