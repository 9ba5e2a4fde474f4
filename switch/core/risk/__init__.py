"""Risk controls: rules as data (switch.core.risk.rules), the request's facts they judge
(facts), the sliding windows, buckets and cool-downs that remember (windows), and the engine
that decides and remembers (engine). No I/O: the service loads the rules file (switch.risk),
journals the decisions and logs the alerts the engine returns."""
