-- wrk: every request enqueues one job with the same small JSON body.
wrk.method = "POST"
wrk.body = '{"message": "bench"}'
wrk.headers["Content-Type"] = "application/json"
