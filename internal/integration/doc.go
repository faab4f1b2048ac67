// Package integration holds multi-process tests: our binaries from cmd/
// are built once per run and driven against real neoppod (Python NEO)
// nodes started on loopback with ../shared/peers/neo-py-cluster.sh.
//
// neoctl tests (neoctl_test.go) run neoppod's neoctl and ours with the
// same arguments and require the same stdout, stderr and exit status;
// effects (start, add, tweak, kill, drop, truncate, set cluster STOPPING)
// are observed through print commands. neoppod's neoctl runs in one
// long-lived Python process (testdata/neoctl_server.py) to save the
// interpreter start, except where a fresh process matters (usage, errors).
//
// The tests are behind the `integration` build tag (make integration).
// They skip when the Python peers are not installed, except under CI=true,
// where a missing peer is a failure. Environment:
//
//	NEO_PEERS    directory of neo-py-cluster.sh and env.sh (default: ../shared/peers
//	             next to the module root)
//	NEO_BIN      directory with prebuilt binaries (default: build them)
//	NEO_NEOCTL   neoctl executable to test instead of ours (to check the
//	             harness itself, e.g. a wrapper around neoppod's neoctl)
package integration
