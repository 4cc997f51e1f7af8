#!/usr/bin/env bash
# TLS for the webhook without cert-manager: a CA of its own, a serving certificate for the
# Service's DNS names signed by it, the Secret the Deployment mounts, and the CA in the
# MutatingWebhookConfiguration's caBundle. Needs openssl, and kubectl unless --out.
#
#   kubectl apply -k manifests/webhook/base/
#   manifests/webhook/self-signed.sh              # files in a temporary folder, then kubectl
#   manifests/webhook/self-signed.sh --out DIR    # only write ca.crt, tls.crt, tls.key to DIR
#
# The certificates are valid for DAYS (default 365) days: run it again before then. The
# webhook picks up the new Secret at the next TLS handshake (the kubelet refreshes the
# mounted Secret within a minute or so); until then, failurePolicy Ignore admits Pods
# unchanged rather than blocking them.
set -euo pipefail

service=pod-watcher-webhook
namespace=${NAMESPACE:-pod-watcher}
days=${DAYS:-365}
out=
if [[ ${1:-} == --out ]]; then
  out=${2:?--out needs a folder}
  mkdir -p "$out"
fi
dir=${out:-$(mktemp -d)}
[[ -n $out ]] || trap 'rm -rf "$dir"' EXIT
host=$service.$namespace.svc

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" -subj "/CN=$service-ca" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/tls.key" -out "$dir/tls.csr" -subj "/CN=$host" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:$host,DNS:$host.cluster.local" \
  "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" > "$dir/tls.ext"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -CAcreateserial -out "$dir/tls.crt" -days "$days" -extfile "$dir/tls.ext" 2>/dev/null
rm -f "$dir/tls.csr" "$dir/tls.ext" "$dir/ca.srl"
chmod 600 "$dir/tls.key" "$dir/ca.key"
if [[ -n $out ]]; then
  echo "wrote $dir/ca.crt, $dir/tls.crt and $dir/tls.key for $host" >&2
  exit 0
fi

kubectl -n "$namespace" create secret tls pod-watcher-webhook-tls \
  --cert "$dir/tls.crt" --key "$dir/tls.key" --dry-run=client -o yaml | kubectl apply -f -
ca=$(base64 < "$dir/ca.crt" | tr -d '\n')
patch='['
for index in 0 1; do
  patch+="{\"op\":\"add\",\"path\":\"/webhooks/$index/clientConfig/caBundle\",\"value\":\"$ca\"},"
done
kubectl patch mutatingwebhookconfiguration pod-watcher --type json -p "${patch%,}]"
echo "the webhook trusts $dir/ca.crt (discarded); Secret and caBundle set for $host" >&2
