"""The steps of a transaction, one module each; switch.core.pipeline puts them in order.

A participant is a function of the Context. It returns None to let the transaction go on, or an
`Answer` to end it; one that needs the world (the HSM, an issuer, the journal, time) is a
generator that yields effects (switch.core.context) and gets each one's result back.
"""
