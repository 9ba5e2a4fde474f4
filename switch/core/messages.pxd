# Where Cython compiles messages.py (switch/compiled.py): the checks every request passes and
# the answer every request gets, with their dicts and lengths typed, so a field's value is
# checked by direct calls to str's methods. A request's values are the decoder's, exact str.
# messages.py stays plain Python and runs as such without a compiler.
import cython


@cython.locals(fields=dict, shortest=Py_ssize_t, longest=Py_ssize_t, value=str)
cpdef object check_request(object request)


@cython.locals(fields=dict, request_fields=dict)
cpdef object respond(object request, object code, object issuer_response=*)
