package proto

//go:generate go run ./internal/protogen

// Opt is an optional value: nil on the wire when Valid is false. The zero
// Opt is nil. It is used for optional values that have no natural sentinel
// (see the package documentation for the ones that do).
type Opt[T any] struct {
	V     T
	Valid bool
}

// Some returns a present optional value.
func Some[T any](v T) Opt[T] { return Opt[T]{V: v, Valid: true} }

// Get returns the value and whether it is present.
func (o Opt[T]) Get() (T, bool) { return o.V, o.Valid }

// NodeInfo is one node entry (protocol.md §4.5).
type NodeInfo struct {
	Type        NodeType
	Addr        Addr // zero: no listening address
	NID         NodeID
	State       NodeState
	IDTimestamp Opt[float64] // bit-exact; nil if the node never identified
}

// CellInfo is one cell of a partition table row: (uuid, state).
type CellInfo struct {
	NID   NodeID
	State CellState
}

// CellChange is one cell change of NotifyPartitionChanges.
type CellChange struct {
	Offset uint32
	NID    NodeID
	State  CellState // DISCARDED removes the cell
}

// PackRequest is a pack order attached to a commit: (oids, pack_tid).
// Oids is nil for a full pack; an empty list is kept distinct from nil
// because Python may send it.
type PackRequest struct {
	Oids    Opt[[]Oid]
	PackTid Tid
}

// PackOrder is a pack order as storages record it.
type PackOrder struct {
	ID       Tid        // pack id: the tid of the transaction that carried it
	Approved Opt[bool]  // nil: not signed yet
	Partial  bool       //
	Oids     Opt[[]Oid] // objects of a partial pack; nil otherwise
	PackTid  Tid
}

// PackInfo is the pack order replicated with a transaction (AddTransaction):
// a PackOrder without its id.
type PackInfo struct {
	Approved Opt[bool]
	Partial  bool
	Oids     Opt[[]Oid]
	PackTid  Tid
}

// ObjectData is (compression, checksum, data) of an object record.
// Checksum is the 20-byte SHA-1 of Data.
type ObjectData struct {
	Compression uint8
	Checksum    []byte
	Data        []byte
}

// RelockConflict is the conflict reported by AnswerRelockObject.
type RelockConflict struct {
	Serial         Tid
	ConflictSerial Tid
	Data           Opt[ObjectData] // nil for check-only or no-data stores
}

// LockedTxn is one entry of AnswerLockedTransactions: ttid → final tid
// (InvalidTid if the transaction was only voted).
type LockedTxn struct {
	TTid Tid
	Tid  Tid
}

// HistoryEntry is one (serial, size) of AnswerObjectHistory.
type HistoryEntry struct {
	Serial Tid
	Size   uint64
}

// UndoSerial is one entry of AnswerObjectUndoSerial:
// oid → (current_serial, undo_serial, is_current).
type UndoSerial struct {
	Oid           Oid
	CurrentSerial Tid
	UndoSerial    Tid // InvalidTid: undoing the object creation
	IsCurrent     bool
}

// CheckSource is one entry of CheckReplicas: partition → reference storage
// (0 for none).
type CheckSource struct {
	Partition uint32
	Source    NodeID
}

// UpstreamSource is the reference of CheckPartition: (upstream name,
// address); an empty name means this cluster.
type UpstreamSource struct {
	UpstreamName string
	Addr         Addr
}

// ReplicateSource is one entry of Replicate: partition → feeding storage
// address (zero: no new data, just advance the backup tid).
type ReplicateSource struct {
	Partition uint32
	Addr      Addr
}

// SerialOids is one entry of the {serial: [oid]} maps of AskFetchObjects
// and AnswerFetchObjects.
type SerialOids struct {
	Serial Tid
	Oids   []Oid
}

// The packets, in registration order: each non-answer takes the next code
// (0 for Error, sent as 0x8000), each answer the code of the request just
// above it with ResponseMask set. The //neo:proto directive gives the kind:
// error, ask (dedicated answer), answer, ask-error (answered by Error),
// notify.

// Error is the Error packet (code 0x8000): the answer of any request, the
// positive (ACK) or negative answer of requests answered by Error. It
// implements the error interface (see errors.go).
//
//neo:proto error
type Error struct {
	Code    ErrorCode
	Message string
}

// RequestIdentification must be the first packet on every connection
// except neoctl→admin.
//
//neo:proto ask
type RequestIdentification struct {
	NodeType    NodeType
	NID         NodeID       // 0: none yet
	Addr        Addr         // zero: no listening address
	ClusterName string       //
	IDTimestamp Opt[float64] // bit-exact; election key between masters
	Extra       Dict         `neo:"map"` // keys read_only, backup, devpath, new_nid
}

// AcceptIdentification answers RequestIdentification.
//
//neo:proto answer
type AcceptIdentification struct {
	NodeType NodeType
	MyNID    NodeID // 0 for anonymous links
	YourNID  NodeID // 0 for anonymous links
}

// Ping is a network barrier, answered by Pong at any time.
//
//neo:proto ask
type Ping struct{}

// Pong answers Ping.
//
//neo:proto answer
type Pong struct{}

// CloseClient tells a storage peer that this end no longer uses the
// connection as a client.
//
//neo:proto notify
type CloseClient struct{}

// AskPrimary asks an admin for the primary master.
//
//neo:proto ask
type AskPrimary struct{}

// AnswerPrimary answers AskPrimary.
//
//neo:proto answer
type AnswerPrimary struct {
	PrimaryNID NodeID
}

// NotPrimaryMaster redirects an identifying node to the primary master.
//
//neo:proto notify
type NotPrimaryMaster struct {
	Primary      Opt[uint32] // index into KnownMasters; nil if unknown
	KnownMasters []Addr
}

// NotifyNodeInformation tells about changed nodes; its timestamp strictly
// increases on each connection.
//
//neo:proto notify
type NotifyNodeInformation struct {
	Timestamp float64 // bit-exact
	NodeList  []NodeInfo
}

// AskRecovery asks a storage for its recovery information.
//
//neo:proto ask
type AskRecovery struct{}

// AnswerRecovery answers AskRecovery.
//
//neo:proto answer
type AnswerRecovery struct {
	PTid        PTid
	BackupTid   Tid
	TruncateTid Tid
}

// AskLastIDs asks for the last tid and oid.
//
//neo:proto ask
type AskLastIDs struct{}

// AnswerLastIDs answers AskLastIDs.
//
//neo:proto answer
type AnswerLastIDs struct {
	LastTid  Tid
	LastOid  Oid
	FirstTid Tid // MaxTid if none
}

// AskPartitionTable asks a storage for its full partition table.
//
//neo:proto ask
type AskPartitionTable struct{}

// AnswerPartitionTable answers AskPartitionTable.
//
//neo:proto answer
type AnswerPartitionTable struct {
	PTid        PTid
	NumReplicas uint32
	Rows        [][]CellInfo
}

// SendPartitionTable replaces the receiver's partition table.
//
//neo:proto notify
type SendPartitionTable struct {
	PTid        PTid
	NumReplicas uint32
	Rows        [][]CellInfo
}

// NotifyPartitionChanges changes cells; PTid is the previous one + 1.
//
//neo:proto notify
type NotifyPartitionChanges struct {
	PTid        PTid
	NumReplicas uint32
	CellList    []CellChange
}

// StartOperation lets a storage serve clients and replicate.
//
//neo:proto notify
type StartOperation struct {
	Backup bool
}

// StopOperation tells that the cluster is no longer operational.
//
//neo:proto notify
type StopOperation struct{}

// AskUnfinishedTransactions asks the master for the transactions being
// committed, before replicating the given partitions.
//
//neo:proto ask
type AskUnfinishedTransactions struct {
	Offsets []uint32
}

// AnswerUnfinishedTransactions answers AskUnfinishedTransactions.
//
//neo:proto answer
type AnswerUnfinishedTransactions struct {
	MaxTid   Tid
	TTidList []Tid
}

// AskLockedTransactions asks a storage for the transactions in its
// temporary tables.
//
//neo:proto ask
type AskLockedTransactions struct{}

// AnswerLockedTransactions answers AskLockedTransactions.
//
//neo:proto answer
type AnswerLockedTransactions struct {
	TidDict []LockedTxn `neo:"map"`
}

// AskFinalTID asks for the final tid of a transaction.
//
//neo:proto ask
type AskFinalTID struct {
	TTid Tid
}

// AnswerFinalTID answers AskFinalTID (InvalidTid for nil).
//
//neo:proto answer
type AnswerFinalTID struct {
	Tid Tid
}

// ValidateTransaction commits a transaction found at verification.
//
//neo:proto notify
type ValidateTransaction struct {
	TTid Tid
	Tid  Tid
}

// AskBeginTransaction starts a transaction (Tid is InvalidTid normally).
//
//neo:proto ask
type AskBeginTransaction struct {
	Tid Tid
}

// AnswerBeginTransaction answers AskBeginTransaction with the TTID.
//
//neo:proto answer
type AnswerBeginTransaction struct {
	TTid Tid
}

// FailedVote reports storages whose store or vote failed.
//
//neo:proto ask-error
type FailedVote struct {
	TTid    Tid
	NIDList []NodeID
}

// AskFinishTransaction asks the master to commit a transaction.
//
//neo:proto ask
type AskFinishTransaction struct {
	TTid    Tid
	OidList []Oid
	Deleted []uint32 // partition of each deleted object
	Checked []uint32 // partitions of check-only objects
	Pack    Opt[PackRequest]
}

// AnswerTransactionFinished answers AskFinishTransaction with the final tid.
//
//neo:proto answer
type AnswerTransactionFinished struct {
	TTid Tid
	Tid  Tid
}

// AskLockInformation asks a storage to lock a transaction.
//
//neo:proto ask
type AskLockInformation struct {
	TTid        Tid
	Tid         Tid
	ApprovePack bool
}

// AnswerInformationLocked answers AskLockInformation.
//
//neo:proto answer
type AnswerInformationLocked struct {
	TTid Tid
}

// InvalidateObjects tells clients about a committed transaction.
//
//neo:proto notify
type InvalidateObjects struct {
	Tid     Tid
	OidList []Oid
}

// InvalidatePartitions tells backup masters about a committed transaction.
//
//neo:proto notify
type InvalidatePartitions struct {
	Tid           Tid
	PartitionList []uint32
}

// NotifyUnlockInformation tells storages that a transaction is committed.
//
//neo:proto notify
type NotifyUnlockInformation struct {
	TTid Tid
}

// AskNewOIDs asks the master for new oids.
//
//neo:proto ask
type AskNewOIDs struct {
	NumOids uint32
}

// AnswerNewOIDs answers AskNewOIDs.
//
//neo:proto answer
type AnswerNewOIDs struct {
	OidList []Oid
}

// NotifyDeadlock asks the client owning LockingTid to relock Oid.
//
//neo:proto notify
type NotifyDeadlock struct {
	LockingTid Tid
	Oid        Oid
}

// AskRelockObject relocks an object after NotifyDeadlock.
//
//neo:proto ask
type AskRelockObject struct {
	TTid Tid
	Oid  Oid
}

// AnswerRelockObject answers AskRelockObject; nil Conflict = relocked.
//
//neo:proto answer
type AnswerRelockObject struct {
	Conflict Opt[RelockConflict]
}

// AskStoreObject stores an object in a transaction.
//
//neo:proto ask
type AskStoreObject struct {
	Oid         Oid
	Serial      Tid
	Compression uint8
	Checksum    []byte
	Data        []byte
	DataSerial  Tid // InvalidTid unless undo
	TTid        Tid
}

// AnswerStoreObject answers AskStoreObject: InvalidTid (nil) = locked,
// ZeroTid = stored without lock, other = conflict with that serial.
//
//neo:proto answer
type AnswerStoreObject struct {
	Conflict Tid
}

// AbortTransaction aborts a transaction.
//
//neo:proto notify
type AbortTransaction struct {
	TTid    Tid
	NIDList []NodeID
}

// AskStoreTransaction stores transaction metadata (and votes).
//
//neo:proto ask
type AskStoreTransaction struct {
	TTid        Tid
	User        []byte
	Description []byte
	Extension   []byte
	OidList     []Oid
	Pack        Opt[PackRequest]
}

// AnswerStoreTransaction answers AskStoreTransaction.
//
//neo:proto answer
type AnswerStoreTransaction struct{}

// AskVoteTransaction votes a transaction on a storage.
//
//neo:proto ask
type AskVoteTransaction struct {
	TTid Tid
}

// AnswerVoteTransaction answers AskVoteTransaction.
//
//neo:proto answer
type AnswerVoteTransaction struct{}

// AskObject loads an object (At and Before are InvalidTid for nil).
//
//neo:proto ask
type AskObject struct {
	Oid    Oid
	At     Tid
	Before Tid
}

// AnswerObject answers AskObject. Data and Checksum alias the decoded frame.
//
//neo:proto answer
type AnswerObject struct {
	Oid         Oid
	Serial      Tid
	NextSerial  Tid
	Compression Opt[uint8] // nil possible when there is no data
	Checksum    []byte
	Data        []byte
	DataSerial  Tid
}

// AskTIDs asks for tids, most recent first, offsets [First, Last).
//
//neo:proto ask
type AskTIDs struct {
	First     uint64
	Last      uint64
	Partition uint32 // 0xffffffff: all readable partitions
}

// AnswerTIDs answers AskTIDs.
//
//neo:proto answer
type AnswerTIDs struct {
	TidList []Tid
}

// AskTransactionInformation asks for a transaction's metadata.
//
//neo:proto ask
type AskTransactionInformation struct {
	Tid Tid
}

// AnswerTransactionInformation answers AskTransactionInformation.
//
//neo:proto answer
type AnswerTransactionInformation struct {
	Tid         Tid
	User        []byte
	Description []byte
	Extension   []byte
	Packed      bool
	OidList     []Oid
}

// AskObjectHistory asks for an object's serials, offsets [First, Last).
//
//neo:proto ask
type AskObjectHistory struct {
	Oid   Oid
	First uint64
	Last  uint64
}

// AnswerObjectHistory answers AskObjectHistory.
//
//neo:proto answer
type AnswerObjectHistory struct {
	Oid         Oid
	HistoryList []HistoryEntry
}

// AskPartitionList asks an admin for rows [MinOffset, MaxOffset).
//
//neo:proto ask
type AskPartitionList struct {
	MinOffset uint32
	MaxOffset uint32 // 0: to the end
	NID       NodeID // ignored by the admin
}

// AnswerPartitionList answers AskPartitionList.
//
//neo:proto answer
type AnswerPartitionList struct {
	PTid        PTid
	NumReplicas uint32
	RowList     [][]CellInfo
}

// AskNodeList asks an admin for the nodes of a type (nil: all).
//
//neo:proto ask
type AskNodeList struct {
	NodeType Opt[NodeType]
}

// AnswerNodeList answers AskNodeList.
//
//neo:proto answer
type AnswerNodeList struct {
	NodeList []NodeInfo
}

// SetNodeState changes the state of a node (neoctl).
//
//neo:proto ask-error
type SetNodeState struct {
	NID   NodeID
	State NodeState
}

// AddPendingNodes makes pending storages running (neoctl).
//
//neo:proto ask-error
type AddPendingNodes struct {
	NIDList []NodeID
}

// TweakPartitionTable rebalances the partition table, excluding NIDList.
//
//neo:proto ask
type TweakPartitionTable struct {
	DryRun  bool
	NIDList []NodeID
}

// AnswerTweakPartitionTable answers TweakPartitionTable.
//
//neo:proto answer
type AnswerTweakPartitionTable struct {
	Changed bool
	RowList [][]CellInfo
}

// SetNumReplicas changes the number of replicas (neoctl).
//
//neo:proto ask-error
type SetNumReplicas struct {
	NumReplicas uint32
}

// SetClusterState changes the cluster state (neoctl).
//
//neo:proto ask-error
type SetClusterState struct {
	State ClusterState
}

// Repair asks storages to prune orphan data (neoctl).
//
//neo:proto ask-error
type Repair struct {
	NIDList []NodeID
	DryRun  bool
}

// NotifyRepair relays Repair to a storage.
//
//neo:proto notify
type NotifyRepair struct {
	DryRun bool
}

// NotifyClusterInformation tells the cluster state.
//
//neo:proto notify
type NotifyClusterInformation struct {
	State ClusterState
}

// AskClusterState asks for the cluster state.
//
//neo:proto ask
type AskClusterState struct{}

// AnswerClusterState answers AskClusterState (nil if not known yet).
//
//neo:proto answer
type AnswerClusterState struct {
	State Opt[ClusterState]
}

// AskObjectUndoSerial asks which serials an undo would restore.
//
//neo:proto ask
type AskObjectUndoSerial struct {
	TTid      Tid
	LTid      Tid
	UndoneTid Tid
	OidList   []Oid
}

// AnswerObjectUndoSerial answers AskObjectUndoSerial.
//
//neo:proto answer
type AnswerObjectUndoSerial struct {
	ObjectTidDict []UndoSerial `neo:"map"`
}

// AskTIDsFrom asks for up to Length tids of a partition in [MinTid, MaxTid].
//
//neo:proto ask
type AskTIDsFrom struct {
	MinTid    Tid
	MaxTid    Tid
	Length    uint32
	Partition uint32
}

// AnswerTIDsFrom answers AskTIDsFrom.
//
//neo:proto answer
type AnswerTIDsFrom struct {
	TidList []Tid
}

// AskOIDsFrom asks for the oids of a partition from MinOid.
//
//neo:proto ask
type AskOIDsFrom struct {
	Partition uint32
	Length    uint32
	MinOid    Oid
	Tid       Tid
}

// AnswerOIDsFrom answers AskOIDsFrom (NextOid InvalidOid: the end).
//
//neo:proto answer
type AnswerOIDsFrom struct {
	NextOid Oid
	OidList []Oid
}

// WaitForPack waits for a pack to complete.
//
//neo:proto ask
type WaitForPack struct {
	Tid Tid
}

// WaitedForPack answers WaitForPack.
//
//neo:proto answer
type WaitedForPack struct{}

// AskPackOrders asks for pack orders from PackID.
//
//neo:proto ask
type AskPackOrders struct {
	PackID Tid
}

// AnswerPackOrders answers AskPackOrders.
//
//neo:proto answer
type AnswerPackOrders struct {
	PackOrderList []PackOrder
}

// NotifyPackSigned tells about approved and rejected pack orders.
//
//neo:proto notify
type NotifyPackSigned struct {
	Approved []Tid
	Rejected []Tid
}

// NotifyPackCompleted tells that a storage packed up to PackID.
//
//neo:proto notify
type NotifyPackCompleted struct {
	PackID Tid
}

// CheckReplicas asks the master to check partitions (neoctl).
//
//neo:proto ask-error
type CheckReplicas struct {
	PartitionDict []CheckSource `neo:"map"`
	MinTid        Tid
	MaxTid        Tid // InvalidTid: up to the last tid
}

// CheckPartition asks a storage to check a partition.
//
//neo:proto notify
type CheckPartition struct {
	Partition uint32
	Source    UpstreamSource
	MinTid    Tid
	MaxTid    Tid
}

// AskCheckTIDRange asks for a digest of a partition's tids.
//
//neo:proto ask
type AskCheckTIDRange struct {
	Partition uint32
	Length    uint32
	MinTid    Tid
	MaxTid    Tid
}

// AnswerCheckTIDRange answers AskCheckTIDRange.
//
//neo:proto answer
type AnswerCheckTIDRange struct {
	Count    uint64
	Checksum []byte
	MaxTid   Tid
}

// AskCheckSerialRange asks for digests of a partition's object records.
//
//neo:proto ask
type AskCheckSerialRange struct {
	Partition uint32
	Length    uint32
	MinTid    Tid
	MaxTid    Tid
	MinOid    Oid
}

// AnswerCheckSerialRange answers AskCheckSerialRange.
//
//neo:proto answer
type AnswerCheckSerialRange struct {
	Count       uint64
	TidChecksum []byte
	MaxTid      Tid
	OidChecksum []byte
	MaxOid      Oid
}

// NotifyPartitionCorrupted reports corrupted cells.
//
//neo:proto notify
type NotifyPartitionCorrupted struct {
	Partition uint32
	NIDList   []NodeID
}

// NotifyReady tells the master that a storage is operational.
//
//neo:proto notify
type NotifyReady struct{}

// AskLastTransaction asks for the last committed tid.
//
//neo:proto ask
type AskLastTransaction struct{}

// AnswerLastTransaction answers AskLastTransaction.
//
//neo:proto answer
type AnswerLastTransaction struct {
	Tid Tid
}

// AskCheckCurrentSerial checks and locks the current serial of an object.
//
//neo:proto ask
type AskCheckCurrentSerial struct {
	TTid   Tid
	Oid    Oid
	Serial Tid
}

// AnswerCheckCurrentSerial answers AskCheckCurrentSerial, like
// AnswerStoreObject.
//
//neo:proto answer
type AnswerCheckCurrentSerial struct {
	Conflict Tid
}

// NotifyTransactionFinished tells a storage that a transaction it waited
// for is committed.
//
//neo:proto notify
type NotifyTransactionFinished struct {
	TTid   Tid
	MaxTid Tid
}

// Replicate asks a storage to replicate partitions up to Tid.
//
//neo:proto notify
type Replicate struct {
	Tid          Tid
	UpstreamName string
	SourceDict   []ReplicateSource `neo:"map"`
}

// NotifyReplicationDone tells that a partition is replicated up to Tid.
//
//neo:proto notify
type NotifyReplicationDone struct {
	Offset uint32
	Tid    Tid
}

// AskFetchTransactions asks a feeding storage for missing transactions.
//
//neo:proto ask
type AskFetchTransactions struct {
	Partition   uint32
	Length      uint32
	MinTid      Tid
	MaxTid      Tid
	TidList     []Tid // known tids
	AskPackInfo bool
}

// AnswerFetchTransactions answers AskFetchTransactions.
//
//neo:proto answer
type AnswerFetchTransactions struct {
	NextTid       Tid
	TidList       []Tid // tids to delete
	CompletedPack Tid
}

// AskFetchObjects asks a feeding storage for missing object records.
//
//neo:proto ask
type AskFetchObjects struct {
	Partition  uint32
	Length     uint32
	MinTid     Tid
	MaxTid     Tid
	MinOid     Oid
	ObjectDict []SerialOids `neo:"map"` // known records
}

// AnswerFetchObjects answers AskFetchObjects.
//
//neo:proto answer
type AnswerFetchObjects struct {
	NextTid    Tid
	NextOid    Oid
	ObjectDict []SerialOids `neo:"map"` // records to delete
}

// AddTransaction replicates a transaction (with the AskFetchTransactions id).
//
//neo:proto notify
type AddTransaction struct {
	Tid         Tid
	User        []byte
	Description []byte
	Extension   []byte
	Packed      bool
	TTid        Tid
	OidList     []Oid
	Pack        Opt[PackInfo]
}

// AddObject replicates an object record (with the AskFetchObjects id).
//
//neo:proto notify
type AddObject struct {
	Oid         Oid
	Serial      Tid
	Compression uint8
	Checksum    []byte
	Data        []byte
	DataSerial  Tid
}

// Truncate truncates the database after Tid.
//
//neo:proto ask-error
type Truncate struct {
	Tid Tid
}

// FlushLog asks nodes to flush their logs.
//
//neo:proto notify
type FlushLog struct{}

// AskMonitorInformation asks an admin for the monitoring summary.
//
//neo:proto ask
type AskMonitorInformation struct{}

// AnswerMonitorInformation answers AskMonitorInformation; a nil name in
// the lists stands for this cluster.
//
//neo:proto answer
type AnswerMonitorInformation struct {
	Warnings []Opt[string]
	Problems []Opt[string]
	Summary  string
}

// NotifyMonitorInformation reports a backup cluster's state to an upstream
// admin: keys cluster_state, down, pt_summary.
//
//neo:proto notify
type NotifyMonitorInformation struct {
	Info Dict `neo:"map"`
}

// NotifyUpstreamAdmin gives the address of an upstream admin.
//
//neo:proto notify
type NotifyUpstreamAdmin struct {
	Addr Addr
}
