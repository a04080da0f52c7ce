-- wrk script for the single-row INSERT targets: a POST with a small JSON body.
wrk.method = "POST"
wrk.body = '{"payload": "bench"}'
wrk.headers["Content-Type"] = "application/json"
