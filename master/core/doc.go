// Package core is the master node's state machine (cluster.md §1.2, §2,
// §5, §6): the cluster state, the node table, the partition table, id
// allocation, the two-phase commit, the election and the secondary role.
//
// It is pure, and its purity is enforced by the repository's tests
// (TestPurePackages in repo_test.go): it imports no I/O package (no net,
// os, neonet...), never reads the clock (time.Now, time.Since... are
// refused), starts no goroutine and logs only through the *slog.Logger of
// its [Config]. Events go in ([Recv]: a packet from a link; [Answer]: the
// answer to one of the master's requests; [Closed]: a link ended;
// [Tick]), a batch of [Effect]s comes out (send, reply, ask, abort or
// dial a link, stop listening, save the master list, exit); time comes
// from [Config.Now], which the driver (package master's Server) passes.
// The same events give the same effects, which the tests of this package
// use to script whole clusters of masters without sockets.
//
// Behaviour is swapped step functions, not flags tested at each call
// site (STYLE §2): the master plays a part, primary or secondary
// (cluster.md §1.2.1), which handles links and transitions; the
// primary's behaviour in each cluster state (RECOVERING, VERIFYING,
// RUNNING, STOPPING) is a role, swapped on state change. The election is
// what the RECOVERING role does towards the other masters; it and the
// secondary part (election.go) dial them with [Dial] effects.
//
// Transitions requested while handling an event (leaving operation after
// a storage loss, STOPPING asked by an admin) are applied at the end of
// the step, after the answers of that step, like neoppod's exceptions.
//
// Where neoppod makes peers wait a second (its CONNECT_LIMIT) during a
// failover, this master answers as soon as it can: it retries masters
// after 100 ms, holds identifications while an election or a recovery is
// under way (hold.go), and keeps a client's link when it refers to a
// transaction begun on a previous primary.
//
// Backup mode (cluster.md §8.9) is backup.go: the master follows an
// upstream cluster as its client ([DialUpstream]) and orders storages
// to replicate from it.
package core
