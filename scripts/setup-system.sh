#!/usr/bin/env bash
# System packages the registry needs on Debian/Ubuntu: PostgreSQL server, PostGIS and, for the
# page tests, Chromium. Installs what is missing when run as root; otherwise prints the command.
set -euo pipefail

need=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ]; then
  need+=(postgresql postgresql-contrib)
  major=15
else
  major=$(basename "$(dirname "$pg_bin")")
fi
[ -f "/usr/share/postgresql/$major/extension/postgis.control" ] || need+=("postgresql-$major-postgis-3")
if [ "${WITH_BROWSER:-1}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # doorplates: the scan page is tested in headless Chromium through Selenium and its Debian driver
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fi
# doorplates: a CJK font for the print sheets (fpdf2), poppler (pdftotext/pdftoppm) to check them
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc ] || need+=(fonts-noto-cjk)  # bold 黑体 for road names and numbers
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
# the map page: MapLibre GL JS is installed from the npm registry (web/package.json) by `make setup`
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v wrk >/dev/null 2>&1 || need+=(wrk)  # bench/bench_serving.py drives the HTTP stack with wrk
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || need+=(pgbouncer)  # the pooler option (README: replicas), tested in tests/replicas
command -v ogr2ogr >/dev/null 2>&1 || need+=(gdal-bin)  # bench_platform: ogr2ogr from PostGIS as the export baseline; ogrinfo OAPIF in the tests
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${need[*]}" >&2
  echo "run as root: apt-get update && apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
