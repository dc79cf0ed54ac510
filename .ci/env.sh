# Sourced by .ci/run and bench/run: what the template's suite and benchmarks need.
# Installs what is missing (Debian packages need root), puts the pyenv Pythons on PATH.
# Downloads use the machine's own settings: pip reads PIP_* and pip.conf, npm its npmrc and
# NODE_EXTRA_CA_CERTS; tox.ini passes those (and the proxies) on to its envs.

export UV_PYTHON_DOWNLOADS=never
# tox finds the other Pythons (3.12, 3.13) for the generated project's envs on PATH.
for version in 3.11 3.12 3.13; do
  for dir in /root/.pyenv/versions/"$version".*/bin; do
    [ -d "$dir" ] && PATH="$PATH:$dir"
  done
done
export PATH

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
# tests/test_observability.py: promtool checks the alert rules, a prometheus server scrapes a render.
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  "tox>=4.22" "tox-uv>=1.16"
