package proto

// Enumerations of protocol.md §2.1. All but ErrorCode travel as msgpack ext
// types whose code is given by ExtType; their names are neoppod's, so that
// printed output matches neoctl's.

// Ext type codes of the enums (§1.6).
const (
	ExtCellStates    = 0
	ExtClusterStates = 1
	ExtErrorCodes    = 2 // defined but never sent as ext
	ExtNodeStates    = 3
	ExtNodeTypes     = 4
)

// CellState is the state of a (partition, storage) cell.
type CellState uint8

const (
	OUT_OF_DATE CellState = iota
	UP_TO_DATE
	FEEDING
	CORRUPTED
	DISCARDED
)

var cellStateNames = [...]string{"OUT_OF_DATE", "UP_TO_DATE", "FEEDING", "CORRUPTED", "DISCARDED"}

func (s CellState) String() string { return enumString(cellStateNames[:], uint8(s), "CellState") }

// Valid reports whether s is a defined value.
func (s CellState) Valid() bool { return int(s) < len(cellStateNames) }

// Readable reports whether a cell in state s serves reads.
func (s CellState) Readable() bool { return s == UP_TO_DATE || s == FEEDING }

// Letter is the one-letter form used in partition table dumps.
func (s CellState) Letter() byte { return "OUFCD"[s] }

// ClusterState is the state of the whole cluster.
type ClusterState uint8

const (
	RECOVERING ClusterState = iota
	VERIFYING
	RUNNING
	STOPPING
	STARTING_BACKUP
	BACKINGUP
	STOPPING_BACKUP
)

var clusterStateNames = [...]string{"RECOVERING", "VERIFYING", "RUNNING", "STOPPING", "STARTING_BACKUP", "BACKINGUP", "STOPPING_BACKUP"}

func (s ClusterState) String() string {
	return enumString(clusterStateNames[:], uint8(s), "ClusterState")
}

// Valid reports whether s is a defined value.
func (s ClusterState) Valid() bool { return int(s) < len(clusterStateNames) }

// ErrorCode is the first argument of the Error packet, a plain integer.
type ErrorCode uint8

const (
	ACK ErrorCode = iota
	DENIED
	NOT_READY
	OID_NOT_FOUND
	TID_NOT_FOUND
	OID_DOES_NOT_EXIST
	PROTOCOL_ERROR
	REPLICATION_ERROR
	CHECKING_ERROR
	BACKEND_NOT_IMPLEMENTED
	NON_READABLE_CELL
	READ_ONLY_ACCESS
	INCOMPLETE_TRANSACTION
	UNDO_PACK_ERROR
)

var errorCodeNames = [...]string{"ACK", "DENIED", "NOT_READY", "OID_NOT_FOUND", "TID_NOT_FOUND",
	"OID_DOES_NOT_EXIST", "PROTOCOL_ERROR", "REPLICATION_ERROR", "CHECKING_ERROR",
	"BACKEND_NOT_IMPLEMENTED", "NON_READABLE_CELL", "READ_ONLY_ACCESS",
	"INCOMPLETE_TRANSACTION", "UNDO_PACK_ERROR"}

func (c ErrorCode) String() string { return enumString(errorCodeNames[:], uint8(c), "ErrorCode") }

// Valid reports whether c is a defined value.
func (c ErrorCode) Valid() bool { return int(c) < len(errorCodeNames) }

// NodeState is the state of a node as the primary master sees it.
type NodeState uint8

const (
	UNKNOWN NodeState = iota
	DOWN
	NODE_RUNNING // "RUNNING" in neoppod; renamed to not clash with ClusterState
	PENDING
)

var nodeStateNames = [...]string{"UNKNOWN", "DOWN", "RUNNING", "PENDING"}

func (s NodeState) String() string { return enumString(nodeStateNames[:], uint8(s), "NodeState") }

// Valid reports whether s is a defined value.
func (s NodeState) Valid() bool { return int(s) < len(nodeStateNames) }

// NodeType is the role of a node.
type NodeType uint8

const (
	MASTER NodeType = iota
	STORAGE
	CLIENT
	ADMIN
)

var nodeTypeNames = [...]string{"MASTER", "STORAGE", "CLIENT", "ADMIN"}

func (t NodeType) String() string { return enumString(nodeTypeNames[:], uint8(t), "NodeType") }

// Valid reports whether t is a defined value.
func (t NodeType) Valid() bool { return int(t) < len(nodeTypeNames) }

// Letter is the node id namespace letter: M, S, C or A.
func (t NodeType) Letter() byte { return "MSCA"[t] }

func enumString(names []string, v uint8, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + itoa(int(v)) + ")"
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
