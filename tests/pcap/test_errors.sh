#!/usr/bin/env bash
# Failure handling on real captures:
#   - a key log with one wrong secret (one hex digit flipped): that session is not
#     "decrypted", reports an error, and no plaintext of the undecryptable direction is dumped;
#     the other session of the same capture is unaffected;
#   - no key log at all: "no_keys", nothing dumped;
#   - a key log with a malformed line: non-zero exit, one line naming the file and line number;
#   - an unreadable or non-capture file and an unknown option: non-zero exit, no signal;
#   - a config file (-c) gives the same result as the command line, which overrides it; its
#     errors (unknown option, missing or extra value, bad value, missing file) name file:line;
#   - captures truncated at random byte offsets: no crash (exit 0 or 1) and whatever was dumped
#     is a prefix of the real plaintext.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup

# flip_secret IN OUT LABEL NTH - flip one hex digit of the secret on the line LABEL of the NTH
# distinct client random in the key log.
flip_secret() {
    $PY - "$@" <<'PYEOF'
import sys
src, dst, label, nth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = open(src).read().splitlines()
randoms = []
for l in lines:
    f = l.split()
    if len(f) == 3 and f[1] not in randoms:
        randoms.append(f[1])
target = randoms[nth - 1]
done = False
for i, l in enumerate(lines):
    f = l.split()
    if len(f) == 3 and f[0] == label and f[1] == target and not done:
        s = f[2]
        c = '0' if s[10] != '0' else '1'
        f[2] = s[:10] + c + s[11:]
        lines[i] = ' '.join(f)
        done = True
if not done:
    sys.exit('no %s line for client random #%d' % (label, nth))
open(dst, 'w').write('\n'.join(lines) + '\n')
PYEOF
}

# gen2 NAME PROTO-OPTS... - two independent full handshakes in one capture.
gen2() {
    new_case "$1"
    shift
    payload_bin "$d/cp1" 20000
    payload_bin "$d/sp1" 30000
    payload_bin "$d/cp2" 25000
    payload_bin "$d/sp2" 35000
    cap_start "$d/cap.pcap" || return 1
    ossl_srv "$d" 2 rsa "$@" || {
        cap_stop
        return 1
    }
    ossl_cli "$d" 1 -- "$@" -nocommands -no_ticket
    ossl_cli "$d" 2 -- "$@" -nocommands -no_ticket
    srv_wait
    cap_stop
    check_peers "$d" 2
}

# check_bad NAME OUT PORT DIR... - the session on PORT dumped nothing for directions DIR...
check_nothing_dumped() {
    local nm=$1 out=$2 port=$3 dir f
    shift 3
    for dir in "$@"; do
        f=$(dump_file "$out" "$port" "$dir")
        if [ -s "$f" ]; then
            t_fail "$nm" "$(fsize "$f") bytes of plaintext dumped for an undecryptable $dir direction"
        fi
    done
}

if gen2 wrong-secret-tls13 -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 && have_mmtlsd; then
    mapfile -t ports < <(client_ports "$d/cap.pcap")
    flip_secret "$d/keys.log" "$d/keys-bad.log" CLIENT_TRAFFIC_SECRET_0 2 ||
        t_fail "$name" "HARNESS: flip_secret"
    run_mmtlsd "$d/cap.pcap" "$d/mm" --keylog "$d/keys-bad.log"
    if mm_ok "$name" "$d/mm"; then
        cmp_dump "${name}[conn 1 c2s]" "$d/cp1" "$(dump_file "$d/mm" "${ports[0]}" c2s)"
        cmp_dump "${name}[conn 1 s2c]" "$d/sp1" "$(dump_file "$d/mm" "${ports[0]}" s2c)"
        eve_tls "${name}[conn 1]" "$d/mm" "${ports[0]}" "tls.get('key_status') == 'decrypted'"
        eve_tls "${name}[conn 2]" "$d/mm" "${ports[1]}" "tls.get('key_status') != 'decrypted'" \
            "len(errs) > 0"
        check_nothing_dumped "${name}[conn 2]" "$d/mm" "${ports[1]}" c2s
        f=$(dump_file "$d/mm" "${ports[1]}" s2c)
        is_prefix "$f" "$d/sp2" || t_fail "${name}[conn 2 s2c]" "the dump is not a prefix of sp2"
    fi
    # No key log at all.
    run_mmtlsd "$d/cap.pcap" "$d/mm-nokeys"
    if mm_ok "$name-nokeys" "$d/mm-nokeys"; then
        for p in "${ports[@]}"; do
            eve_tls "$name-nokeys" "$d/mm-nokeys" "$p" "tls.get('key_status') == 'no_keys'" \
                "tls.get('sni') == '$CERT_SUBJECT_CN'" "tls.get('version') == 'TLS 1.3'"
            check_nothing_dumped "$name-nokeys" "$d/mm-nokeys" "$p" c2s s2c
        done
    fi
fi

if gen2 wrong-secret-tls12 -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384 && have_mmtlsd; then
    mapfile -t ports < <(client_ports "$d/cap.pcap")
    flip_secret "$d/keys.log" "$d/keys-bad.log" CLIENT_RANDOM 1 ||
        t_fail "$name" "HARNESS: flip_secret"
    run_mmtlsd "$d/cap.pcap" "$d/mm" --keylog "$d/keys-bad.log"
    if mm_ok "$name" "$d/mm"; then
        eve_tls "${name}[conn 1]" "$d/mm" "${ports[0]}" "tls.get('key_status') != 'decrypted'" \
            "len(errs) > 0" "tls.get('version') == 'TLS 1.2'"
        check_nothing_dumped "${name}[conn 1]" "$d/mm" "${ports[0]}" c2s s2c
        cmp_dump "${name}[conn 2 c2s]" "$d/cp2" "$(dump_file "$d/mm" "${ports[1]}" c2s)"
        cmp_dump "${name}[conn 2 s2c]" "$d/sp2" "$(dump_file "$d/mm" "${ports[1]}" s2c)"
        eve_tls "${name}[conn 2]" "$d/mm" "${ports[1]}" "tls.get('key_status') == 'decrypted'"
    fi

    # The same run from a config file (-c): same sessions decrypted, same plaintext; the
    # command line overrides the file's single-valued options.
    name=config-file
    T_CASES=$((T_CASES + 1))
    mkdir -p "$d/cf"
    cat >"$d/cf/mmtlsd.conf" <<CONF
# mmtlsd configuration (same options as the command line, without dashes)
read = $d/cap.pcap
keylog   $d/keys-bad.log
log-dir = $d/cf/ignored   # overridden by -l below
dump-plaintext $d/cf/dump
no-verify-all
CONF
    timeout 60 "$MMTLSD" -c "$d/cf/mmtlsd.conf" -l "$d/cf/out" >"$d/cf/log" 2>&1
    rc=$?
    if [ "$rc" != 0 ] || [ ! -s "$d/cf/out/eve.json" ] || [ -e "$d/cf/ignored" ]; then
        t_fail "$name" "rc $rc, eve in -l dir: $([ -s "$d/cf/out/eve.json" ] && echo yes)," \
            "config log-dir used: $([ -e "$d/cf/ignored" ] && echo yes): $(head -c 300 "$d/cf/log")"
    else
        eve_tls "${name}[conn 1]" "$d/cf/out" "${ports[0]}" "tls.get('key_status') != 'decrypted'"
        eve_tls "${name}[conn 2]" "$d/cf/out" "${ports[1]}" "tls.get('key_status') == 'decrypted'"
        cmp_dump "${name}[conn 2 s2c]" "$d/sp2" "$(dump_file "$d/cf" "${ports[1]}" s2c)"
    fi
    # Config errors: exit 2 with the file and line named.
    for bad in "no-such-option 1|:2: unknown option 'no-such-option'" \
        "workers|:2: option 'workers' needs a value" \
        "block-eicar = yes|:2: option 'block-eicar' takes no value" \
        "config other.conf|:2: unknown option 'config'" \
        "workers 0|invalid value for --workers"; do
        name="config-error ${bad%%|*}"
        T_CASES=$((T_CASES + 1))
        printf '# bad\n%s\n' "${bad%%|*}" >"$d/cf/bad.conf"
        timeout 20 "$MMTLSD" --config "$d/cf/bad.conf" -r "$d/cap.pcap" -l "$d/cf/bad" \
            >"$d/cf/bad.log" 2>&1
        rc=$?
        [ "$rc" = 2 ] && grep -qF -- "${bad#*|}" "$d/cf/bad.log" ||
            t_fail "$name" "rc $rc, want 2 and '${bad#*|}': $(head -c 300 "$d/cf/bad.log")"
    done
    name=config-missing
    T_CASES=$((T_CASES + 1))
    timeout 20 "$MMTLSD" -c "$d/cf/none.conf" -r "$d/cap.pcap" >"$d/cf/none.log" 2>&1
    rc=$?
    [ "$rc" = 2 ] && grep -q "cannot open config file" "$d/cf/none.log" ||
        t_fail "$name" "rc $rc: $(head -c 300 "$d/cf/none.log")"
    name=workers-offline
    T_CASES=$((T_CASES + 1))
    timeout 20 "$MMTLSD" --workers 2 -r "$d/cap.pcap" >"$d/cf/w.log" 2>&1
    rc=$?
    [ "$rc" = 2 ] && grep -q "applies to inline mode" "$d/cf/w.log" ||
        t_fail "$name" "rc $rc: $(head -c 300 "$d/cf/w.log")"

    # A malformed key log line (line 3): non-zero exit, a line naming the file and the line.
    name=broken-keylog
    T_CASES=$((T_CASES + 1))
    { sed -n 1,2p "$d/keys.log"; echo "CLIENT_RANDOM 00112233 zz"; sed -n '3,$p' "$d/keys.log"; } \
        >"$d/keys-broken.log"
    run_mmtlsd "$d/cap.pcap" "$d/mm-broken" --keylog "$d/keys-broken.log"
    if [ "$MM_RC" = 0 ] || [ "$MM_RC" -ge 124 ]; then
        t_fail "$name" "exit code $MM_RC, want a non-zero error exit"
    fi
    if ! grep -Eq "keys-broken\.log(:| line |, line |:line )3([^0-9]|$)" "$d/mm-broken/log"; then
        t_fail "$name" "no message naming keys-broken.log and line 3: $(head -c 300 "$d/mm-broken/log")"
    fi

    # Truncated captures: cut at random offsets; no crash; dumps are prefixes of the truth.
    size=$(fsize "$d/cap.pcap")
    for k in 1 2 3 4 5 6; do
        cut=$((RANDOM * 32768 + RANDOM))
        cut=$((cut % (size - 24) + 24))
        name=truncated-at-$cut
        T_CASES=$((T_CASES + 1))
        head -c "$cut" "$d/cap.pcap" >"$d/cap-trunc.pcap"
        run_mmtlsd "$d/cap-trunc.pcap" "$d/mm-trunc" --keylog "$d/keys.log"
        if [ "$MM_RC" != 0 ] && [ "$MM_RC" != 1 ]; then
            t_fail "$name" "exit code $MM_RC (want 0 or 1): $(tail -c 300 "$d/mm-trunc/log")"
            continue
        fi
        for f in "$d"/mm-trunc/dump/f*; do
            [ -e "$f" ] || continue
            i=${f##*/f}
            i=${i%%-*}
            case $f in
            *.c2s) want=$d/cp$i ;;
            *) want=$d/sp$i ;;
            esac
            is_prefix "$f" "$want" || t_fail "$name" "$(basename "$f") is not a prefix of the plaintext"
        done
        if [ -s "$d/mm-trunc/eve.json" ]; then
            $PY -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' \
                "$d/mm-trunc/eve.json" || t_fail "$name" "eve.json is not JSON lines"
        fi
    done
fi

if have_mmtlsd; then
    # Unreadable / non-capture files, an unknown option.
    d=$T_WORK/cli
    mkdir -p "$d"
    T_CASES=$((T_CASES + 1))
    head -c 5000 /dev/urandom >"$d/garbage.pcap"
    for f in "$d/does-not-exist.pcap" "$d/garbage.pcap" "$d"; do
        run_mmtlsd "$f" "$d/mm"
        if [ "$MM_RC" = 0 ] || [ "$MM_RC" -ge 124 ]; then
            t_fail "bad-capture $(basename "$f")" "exit code $MM_RC, want a non-zero error exit"
        elif [ "$(grep -c . "$d/mm/log")" -gt 3 ] || ! grep -q "$(basename "$f")" "$d/mm/log"; then
            t_fail "bad-capture $(basename "$f")" "want a short error naming the file:" \
                "$(head -c 300 "$d/mm/log")"
        fi
    done
    timeout 20 "$MMTLSD" --no-such-option >"$d/opt.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then
        t_fail unknown-option "exit code $rc, want a non-zero error exit"
    fi
    timeout 20 "$MMTLSD" -r "$d/garbage.pcap" --keylog "$d/does-not-exist.log" -l "$d/mm" \
        >"$d/kl.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then
        t_fail missing-keylog "exit code $rc, want a non-zero error exit"
    fi
fi
t_finish
