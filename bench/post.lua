-- wrk: every request enqueues one job with the same small JSON body, with the bearer token
-- the generated app requires (the minimal baselines ignore it).
wrk.method = "POST"
wrk.body = '{"message": "bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_API_TOKEN")
