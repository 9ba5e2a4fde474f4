"""Routing-table tools for engineers (`cardswitch routes`): explain a lookup, diff two tables, run
[[cases]] expectations, write a CSV BIN file as routes TOML, time a big table. Reading and
checking a table is the switch's own (switch.routes), since a running switch reloads with it."""
