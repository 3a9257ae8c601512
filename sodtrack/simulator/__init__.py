"""Simulator of the Sodtrack Integration API, exactly as ``sodtrack.contract`` defines it.

Entry points: ``app.create_app(config.SimConfig(...))`` (a Starlette app; the ``Simulator`` is
``app.state.sim``), ``testing`` (in-process transport, uvicorn in a thread, a small config),
``flakyproxy`` (a fault-injecting proxy) with ``flakyclient`` (the client the flaky-network test
and bench use: the one module here that imports ``sodtrack.client``, never imported by the
server) and the ``sodtrack-sim`` CLI (``cli``). Design by module: ``app`` the request
pipeline, ``handlers`` the operations' rules, ``seed`` the data, ``state``/``store`` the
records, ``world`` what happens as time passes, ``auth``/``ratelimit``/``faults`` the
cross-cutting behaviour. Decisions where the contract is silent: ``docs/api-decisions.md``.
Never imports prefect.
"""
