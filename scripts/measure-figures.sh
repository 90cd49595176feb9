#!/usr/bin/env bash
# Re-measures every failover figure the README publishes, each with the command
# beside it in the README, into docs/figures/NAME/ (report.json, summary.md, junit.xml, plots).
# `make figures` runs it; about an hour on a 2-core machine. ONLY=NAME,NAME picks rows.
set -u
LAB=${LAB:-.venv/bin/lab}
OUT=${OUT:-docs/figures}
mkdir -p "$OUT"
log="$OUT/campaign.log"
# name | lab failover arguments (the README shows each row's as its command)
rows=(
  "as-azure-maintenance|--scenario active-standby --profile azure --fault maintenance --runs 5"
  "as-azure-kill|--scenario active-standby --profile azure --fault kill --runs 5"
  "as-azure-blackhole|--scenario active-standby --profile azure --fault blackhole --runs 1"
  "as-fast-kill|--scenario active-standby --profile fast --fault kill --runs 5"
  "as-fast-maintenance|--scenario active-standby --profile fast --fault maintenance --runs 5"
  "as-fast-pause|--scenario active-standby --profile fast --fault pause --runs 5"
  "as-fast-link-down|--scenario active-standby --profile fast --fault link-down --runs 5"
  "aa-fast-kill-gw0|--scenario active-active --profile fast --fault kill --target azure-gw-0 --runs 5"
  "dr-fast-kill-onprem0|--scenario dual-redundancy --profile fast --fault kill --target onprem-0 --runs 5"
  "aa-azure-kill-gw0|--scenario active-active --profile azure --fault kill --target azure-gw-0 --runs 5"
  "dr-azure-kill-onprem0|--scenario dual-redundancy --profile azure --fault kill --target onprem-0 --runs 5"
)
for row in "${rows[@]}"; do
  name=${row%%|*}
  args=${row#*|}
  if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
  start=$(date +%s)
  # shellcheck disable=SC2086 # the arguments are this file's own words
  $LAB failover $args --out "$OUT/$name" >"$OUT/$name.out" 2>&1
  code=$?
  echo "$(date -u +%FT%TZ) $name: exit $code in $(( $(date +%s) - start )) s: lab failover $args" | tee -a "$log"
done
for scenario in active-standby active-active dual-redundancy; do
  $LAB status --lab "$scenario" 2>/dev/null | grep -i "forwarded\|left the lab" | sed "s/^/$scenario: /" | tee -a "$log"
  $LAB down --lab "$scenario" >/dev/null 2>&1
done
