package parttab

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/neogo/neo/proto"
)

// Cell assignment (cluster.md §4.4).
//
// A tweak first deals the partitions round-robin over the N nodes it may
// use, repeats = min(nr+1, N) times each, which gives the canonical layout
// (np=5, nr=1, N=3):
//
//	slot:  0  1  2  3  4  5  6  7  8  9
//	part:  0  0  1  1  2  2  3  3  4  4
//	node:  a  b  c  a  b  c  a  b  c  a   → a:(0,1,3,4) b:(0,2,3) c:(1,2,4)
//
// Consecutive partitions land on different nodes and node loads differ by
// at most one cell. Which real node gets which of these option tuples is
// then searched for, depth first: first without moving any non-FEEDING
// cell (so that a second tweak changes nothing), then with a heuristic
// that minimises replication. Options are also checked against the
// storage topology so that the replicas of a partition are as far apart as
// the devpaths of the nodes allow.

// TweakResult is the outcome of [Table.Tweak].
type TweakResult struct {
	// Changes are the cell changes to broadcast, empty if none.
	Changes []Change
	// TopologyIgnored is set when the nodes' devpaths did not allow to
	// spread replicas evenly; the master warns the operator that a few
	// device failures may lose data.
	TopologyIgnored bool
}

// Make builds the first table for the RUNNING storages nodes, in a table
// without id: cells are UP_TO_DATE, the id becomes 1 and nodes that got no
// cell leave the node set. devpaths gives the topology path of each node
// (may be nil).
func (t *Table) Make(nodes []proto.NodeID, devpaths map[proto.NodeID][]string) (TweakResult, error) {
	switch {
	case t.ptid != 0:
		return TweakResult{}, fmt.Errorf("make partition table: already made (ptid %d)", t.ptid)
	case len(nodes) == 0:
		return TweakResult{}, errors.New("make partition table: no storage node")
	}
	t.AddNodes(nodes...)
	res, err := t.Tweak(nil, devpaths)
	if err != nil {
		return res, err
	}
	for nid, n := range t.nodes {
		if n == 0 {
			delete(t.nodes, nid)
		}
	}
	return res, nil
}

// topoLimit bounds, at one depth of the topology, the cells of a
// partition: a group may hold at most max cells, and at most full groups
// may hold exactly max.
type topoLimit struct{ max, full int }

// topoNode counts the cells of one partition under a topology prefix.
type topoNode struct {
	n   int
	sub map[string]*topoNode
}

type tweakNode struct {
	nid   proto.NodeID
	cells map[uint32]proto.CellState
	path  []string // topology path, cut to the depth in use
}

type option []uint32

// candidate is one step of a search strategy: a node and the options to
// try for it, best first.
type candidate struct {
	node    int
	options []int // indexes in tweaker.options
}

type tweaker struct {
	t       *Table
	nodes   []tweakNode
	repeats int
	options []option // distinct canonical options, sorted by (-len, value)
	avail   []int    // how many of each option remain to hand out
	limits  []topoLimit
	topo    []map[string]*topoNode // per partition
}

// Tweak reassigns cells (neoctl tweak, cluster.md §4.4) and returns the
// changes. Nodes of drop keep their cells untouched and do not count as
// replicas; every other node of the node set must be RUNNING (see
// [TweakDropList]). New cells are OUT_OF_DATE, or UP_TO_DATE for a table
// without id (which then gets id 1). A readable cell that must go becomes
// FEEDING while the partition has fewer than min(nr+1, N) readable cells
// elsewhere. For a dry run, tweak a [Table.Clone].
func (t *Table) Tweak(drop []proto.NodeID, devpaths map[proto.NodeID][]string) (TweakResult, error) {
	tw := &tweaker{t: t}
	for _, nid := range t.Nodes() {
		if !slices.Contains(drop, nid) {
			tw.nodes = append(tw.nodes, tweakNode{nid: nid, cells: map[uint32]proto.CellState{}})
		}
	}
	if len(tw.nodes) == 0 {
		return TweakResult{}, ErrRemoveAllNodes
	}
	for o, row := range t.rows {
		for _, c := range row {
			if i := tw.nodeIndex(c.NID); i >= 0 {
				tw.nodes[i].cells[uint32(o)] = c.State
			}
		}
	}
	tw.layout()
	var res TweakResult
	res.TopologyIgnored = !tw.topology(devpaths)

	var plan []candidate
	var chosen []int
	for _, strategy := range [][]candidate{tw.noMove(), tw.heuristic()} {
		if strategy == nil {
			continue
		}
		if chosen = tw.search(strategy); chosen != nil {
			plan = strategy
			break
		}
	}
	if chosen == nil {
		// The heuristic strategy lists every option for every node and
		// the options were dealt for exactly these nodes: unreachable
		// unless the topology limits are wrong.
		return res, errors.New("tweak partition table: no assignment found")
	}
	res.Changes = tw.apply(plan, chosen)
	return res, nil
}

func (tw *tweaker) nodeIndex(nid proto.NodeID) int {
	i, ok := slices.BinarySearchFunc(tw.nodes, nid, func(n tweakNode, nid proto.NodeID) int {
		return cmp.Compare(n.nid, nid)
	})
	if !ok {
		return -1
	}
	return i
}

// layout deals the partitions round-robin and collects the distinct
// options with their multiplicity.
func (tw *tweaker) layout() {
	n := len(tw.nodes)
	tw.repeats = min(tw.t.nr+1, n)
	per := make([]option, n)
	slot := 0
	for p := range tw.t.rows {
		for range tw.repeats {
			per[slot%n] = append(per[slot%n], uint32(p))
			slot++
		}
	}
	slices.SortFunc(per, compareOptions)
	for _, o := range per {
		if k := len(tw.options); k > 0 && slices.Equal(tw.options[k-1], o) {
			tw.avail[k-1]++
			continue
		}
		tw.options = append(tw.options, o)
		tw.avail = append(tw.avail, 1)
	}
}

// compareOptions orders options by decreasing length, then by value.
func compareOptions(a, b option) int {
	if c := cmp.Compare(len(b), len(a)); c != 0 {
		return c
	}
	return slices.Compare(a, b)
}

// topology chooses the depth of the nodes' paths at which replicas are
// spread, and the limits per depth. It reports false when the paths do not
// allow an even spread, in which case the topology is ignored.
func (tw *tweaker) topology(devpaths map[proto.NodeID][]string) bool {
	tw.topo = make([]map[string]*topoNode, len(tw.t.rows))
	for i := range tw.topo {
		tw.topo[i] = map[string]*topoNode{}
	}
	if tw.repeats <= 1 {
		return true
	}
	n := len(tw.nodes)
	maxDepth := -1
	for _, node := range tw.nodes {
		if d := len(devpaths[node.nid]); maxDepth < 0 || d < maxDepth {
			maxDepth = d
		}
	}
	for depth := 1; depth <= maxDepth; depth++ {
		groups := map[string]int{}
		for _, node := range tw.nodes {
			groups[strings.Join(devpaths[node.nid][:depth], "\x00")]++
		}
		biggest, even := 0, true
		for _, size := range groups {
			if biggest != 0 && size != biggest {
				even = false
			}
			biggest = max(biggest, size)
		}
		if !even && biggest*tw.repeats > n {
			break // groups too unbalanced for an even spread
		}
		q, r := tw.repeats/len(groups), tw.repeats%len(groups)
		if r != 0 {
			tw.limits = append(tw.limits, topoLimit{q + 1, r})
		} else {
			tw.limits = append(tw.limits, topoLimit{q, len(groups)})
		}
		if len(groups) < tw.repeats {
			continue // look deeper to spread the remaining replicas
		}
		for i := range tw.nodes {
			tw.nodes[i].path = devpaths[tw.nodes[i].nid][:depth]
		}
		return true
	}
	tw.limits = nil
	return false
}

// fits checks whether giving option o to a node of path path respects the
// topology limits and, if so, records it.
func (tw *tweaker) fits(path []string, o option) bool {
	for _, p := range o {
		level := tw.topo[p]
		for d, name := range path {
			node := level[name]
			if node == nil {
				node = &topoNode{sub: map[string]*topoNode{}}
				level[name] = node
			}
			lim := tw.limits[d]
			if node.n == lim.max || node.n+1 == lim.max && countFull(level, lim.max) == lim.full {
				return false
			}
			level = node.sub
		}
	}
	tw.addTopology(path, o, 1)
	return true
}

func countFull(level map[string]*topoNode, max int) int {
	k := 0
	for _, node := range level {
		if node.n == max {
			k++
		}
	}
	return k
}

func (tw *tweaker) addTopology(path []string, o option, delta int) {
	for _, p := range o {
		level := tw.topo[p]
		for _, name := range path {
			node := level[name]
			node.n += delta
			level = node.sub
		}
	}
}

// noMove is the first strategy: for each node, in id order, the options
// that keep all its non-FEEDING cells. It returns nil if a node has none.
func (tw *tweaker) noMove() []candidate {
	plan := make([]candidate, len(tw.nodes))
	for i, node := range tw.nodes {
		plan[i].node = i
		for k, o := range tw.options {
			keeps := true
			for p, s := range node.cells {
				if s != proto.FEEDING && !slices.Contains(o, p) {
					keeps = false
					break
				}
			}
			if keeps {
				plan[i].options = append(plan[i].options, k)
			}
		}
		if len(plan[i].options) == 0 {
			return nil
		}
	}
	return plan
}

// heuristic is the second strategy. The cost of an option for a node is
// what the node would lose: (readable cells, other cells) outside the
// option. Each node lists its options by cost; nodes whose best and worst
// options differ most come first, so that bad choices left to the end
// matter least.
func (tw *tweaker) heuristic() []candidate {
	type cost struct{ readable, other int }
	type entry struct {
		spread cost
		candidate
	}
	entries := make([]entry, len(tw.nodes))
	for i, node := range tw.nodes {
		costs := make([]cost, len(tw.options))
		for k, o := range tw.options {
			for p, s := range node.cells {
				if !slices.Contains(o, p) {
					if s.Readable() {
						costs[k].readable++
					} else {
						costs[k].other++
					}
				}
			}
		}
		order := make([]int, len(tw.options))
		for k := range order {
			order[k] = k
		}
		slices.SortFunc(order, func(a, b int) int {
			return cmp.Or(cmp.Compare(costs[a].readable, costs[b].readable),
				cmp.Compare(costs[a].other, costs[b].other), cmp.Compare(a, b))
		})
		best, worst := costs[order[0]], costs[order[len(order)-1]]
		entries[i] = entry{cost{best.readable - worst.readable, best.other - worst.other}, candidate{i, order}}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.spread.readable, b.spread.readable),
			cmp.Compare(a.spread.other, b.spread.other), cmp.Compare(a.node, b.node))
	})
	plan := make([]candidate, len(entries))
	for i, e := range entries {
		plan[i] = e.candidate
	}
	return plan
}

// search gives an option to each node of plan in turn, depth first with
// backtracking, and returns the options chosen (indexes in tw.options, in
// plan order), or nil.
func (tw *tweaker) search(plan []candidate) []int {
	var chosen []int
	var resume []int // per level of chosen: where to continue in its options
	next := 0
	for {
		cand := plan[len(chosen)]
		path := tw.nodes[cand.node].path
		if next == len(cand.options) {
			if len(chosen) == 0 {
				return nil
			}
			// Dead end: undo the previous node's choice, try its next one.
			k := chosen[len(chosen)-1]
			chosen = chosen[:len(chosen)-1]
			next = resume[len(resume)-1]
			resume = resume[:len(resume)-1]
			tw.addTopology(tw.nodes[plan[len(chosen)].node].path, tw.options[k], -1)
			tw.avail[k]++
			continue
		}
		k := cand.options[next]
		next++
		if tw.avail[k] == 0 || !tw.fits(path, tw.options[k]) {
			continue
		}
		chosen = append(chosen, k)
		if len(chosen) == len(plan) {
			return chosen
		}
		resume = append(resume, next)
		next = 0
		tw.avail[k]--
	}
}

// apply turns the chosen options into cell changes.
func (tw *tweaker) apply(plan []candidate, chosen []int) []Change {
	t := tw.t
	newState := proto.OUT_OF_DATE
	if t.ptid == 0 {
		t.ptid = 1
		newState = proto.UP_TO_DATE
	}
	var changes []Change
	missing := make([]int, len(t.rows)) // readable cells still wanted per partition
	for p := range missing {
		missing[p] = tw.repeats
	}
	discard := make([][]proto.NodeID, len(t.rows)) // per partition, in plan order
	for i, k := range chosen {
		node := tw.nodes[plan[i].node]
		for _, p := range tw.options[k] {
			s, ok := node.cells[p]
			delete(node.cells, p)
			switch {
			case !ok:
				t.setCell(p, node.nid, newState)
				changes = append(changes, Change{p, node.nid, newState})
			case s == proto.FEEDING:
				t.setCell(p, node.nid, proto.UP_TO_DATE)
				changes = append(changes, Change{p, node.nid, proto.UP_TO_DATE})
				missing[p]--
			case s == proto.UP_TO_DATE:
				missing[p]--
			}
		}
		for _, p := range sortedKeys(node.cells) {
			discard[p] = append(discard[p], node.nid)
		}
	}
	for o, nids := range discard {
		p := uint32(o)
		for _, nid := range nids {
			c, _ := t.Cell(p, nid)
			if missing[p] > 0 && c.Readable() {
				missing[p]--
				if c.State == proto.FEEDING {
					continue
				}
				t.setCell(p, nid, proto.FEEDING)
				changes = append(changes, Change{p, nid, proto.FEEDING})
			} else {
				t.removeCell(p, nid)
				changes = append(changes, Change{p, nid, proto.DISCARDED})
			}
		}
	}
	return changes
}
