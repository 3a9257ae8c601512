"""The Sodtrack Integration API contract in one place: countries, limits, error codes,
models and the route table. Neither the simulator nor the client hard-codes any of it."""
