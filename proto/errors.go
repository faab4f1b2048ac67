package proto

import (
	"errors"
	"fmt"
)

// Error implements the Go error interface so that an Error packet received
// as an answer can be returned as is. Two *Error match under [errors.Is]
// when their codes are equal, whatever their messages:
//
//	if errors.Is(err, proto.ErrOidNotFound) { ... }
func (e *Error) Error() string {
	if e.Message == "" {
		return "neo: " + e.Code.String()
	}
	return "neo: " + e.Code.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels, one per [ErrorCode], for use with [errors.Is]. They carry no
// message; do not modify them.
var (
	// ErrAck is the success answer of requests answered by Error
	// (SetNodeState, SetClusterState, ...); its message is a status text.
	ErrAck = &Error{Code: ACK}
	// ErrDenied: an administrative command was refused.
	ErrDenied = &Error{Code: DENIED}
	// ErrNotReady: the node or cluster is not ready; retry later (the
	// sender closes the connection).
	ErrNotReady = &Error{Code: NOT_READY}
	// ErrOidNotFound: the object exists but has no record matching the
	// requested serial (or its history is unknown).
	ErrOidNotFound = &Error{Code: OID_NOT_FOUND}
	// ErrTidNotFound: unknown transaction.
	ErrTidNotFound = &Error{Code: TID_NOT_FOUND}
	// ErrOidDoesNotExist: the object has no record at all.
	ErrOidDoesNotExist = &Error{Code: OID_DOES_NOT_EXIST}
	// ErrProtocol: the peer saw a protocol violation (it closes the connection).
	ErrProtocol = &Error{Code: PROTOCOL_ERROR}
	// ErrReplication: the feeding storage cannot serve the partition.
	ErrReplication = &Error{Code: REPLICATION_ERROR}
	// ErrChecking: the storage cannot serve a replica check for the partition.
	ErrChecking = &Error{Code: CHECKING_ERROR}
	// ErrBackendNotImplemented: the storage backend lacks a feature.
	ErrBackendNotImplemented = &Error{Code: BACKEND_NOT_IMPLEMENTED}
	// ErrNonReadableCell: the storage does not serve this partition for
	// reading; retry on another cell or after a partition table update.
	ErrNonReadableCell = &Error{Code: NON_READABLE_CELL}
	// ErrReadOnlyAccess: write refused (read-only client or backup cluster).
	ErrReadOnlyAccess = &Error{Code: READ_ONLY_ACCESS}
	// ErrIncompleteTransaction: the transaction cannot be finished.
	ErrIncompleteTransaction = &Error{Code: INCOMPLETE_TRANSACTION}
	// ErrUndoPack: undo impossible because of a pack.
	ErrUndoPack = &Error{Code: UNDO_PACK_ERROR}
)

// ErrDecode is matched (via [errors.Is]) by every error that decoding
// returns for malformed input; the concrete error is a [*DecodeError].
var ErrDecode = errors.New("proto: malformed packet")

// ErrFrameTooBig is matched by the error of [FrameSize] when a packet
// declares more bytes than the allowed maximum.
var ErrFrameTooBig = errors.New("proto: packet too big")

// DecodeError tells which packet and which argument could not be decoded.
type DecodeError struct {
	Msg string // packet name, or "packet" for the [id, code, args] envelope
	Arg int    // argument index, -1 for the envelope or the args array itself
	Err error  // what was wrong
}

func (e *DecodeError) Error() string {
	if e.Arg < 0 {
		return fmt.Sprintf("proto: decode %s: %v", e.Msg, e.Err)
	}
	return fmt.Sprintf("proto: decode %s arg %d: %v", e.Msg, e.Arg, e.Err)
}

// Unwrap returns the cause and [ErrDecode].
func (e *DecodeError) Unwrap() []error { return []error{ErrDecode, e.Err} }
