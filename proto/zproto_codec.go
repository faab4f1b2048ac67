package proto

// Temporary hand-written codec for the first packets; replaced by the
// generator.

const numCodes = 74

var requestTable = [numCodes]msgInfo{
	1: {name: "RequestIdentification", kind: KindAsk, answer: 0x8001, new: func() Msg { return new(RequestIdentification) }},
	2: {name: "Ping", kind: KindAsk, answer: 0x8002, new: func() Msg { return new(Ping) }},
	6: {name: "NotifyNodeInformation", kind: KindNotify, new: func() Msg { return new(NotifyNodeInformation) }},
}

var answerTable = [numCodes]msgInfo{
	0: {name: "Error", kind: KindError, new: func() Msg { return new(Error) }},
	1: {name: "AcceptIdentification", kind: KindAnswer, new: func() Msg { return new(AcceptIdentification) }},
	2: {name: "Pong", kind: KindAnswer, new: func() Msg { return new(Pong) }},
}

func (*Error) NEOMsgCode() uint16 { return 0x8000 }
func (m *Error) NEOMsgEncode(b []byte) []byte {
	b = append(b, 0x92)
	b = appendUint(b, uint64(m.Code))
	return appendBinString(b, m.Message)
}
func (m *Error) NEOMsgDecode(data []byte) (int, error) {
	d := decoder{b: data}
	if d.tuple(2); d.err != nil {
		return 0, argsError("Error", -1, d.err)
	}
	if m.Code = d.errorCode(); d.err != nil {
		return 0, argsError("Error", 0, d.err)
	}
	if m.Message = d.string(); d.err != nil {
		return 0, argsError("Error", 1, d.err)
	}
	return d.i, nil
}

func (*RequestIdentification) NEOMsgCode() uint16 { return 1 }
func (m *RequestIdentification) NEOMsgEncode(b []byte) []byte {
	b = append(b, 0x96)
	b = appendEnum(b, ExtNodeTypes, uint8(m.NodeType))
	b = appendNodeID(b, m.NID)
	b = appendAddr(b, m.Addr)
	b = appendBinString(b, m.ClusterName)
	b = appendOptFloat(b, m.IDTimestamp)
	return appendDict(b, m.Extra)
}
func (m *RequestIdentification) NEOMsgDecode(data []byte) (int, error) {
	const name = "RequestIdentification"
	d := decoder{b: data}
	if d.tuple(6); d.err != nil {
		return 0, argsError(name, -1, d.err)
	}
	if m.NodeType = d.nodeType(); d.err != nil {
		return 0, argsError(name, 0, d.err)
	}
	if m.NID = d.nodeID(); d.err != nil {
		return 0, argsError(name, 1, d.err)
	}
	if m.Addr = d.addr(); d.err != nil {
		return 0, argsError(name, 2, d.err)
	}
	if m.ClusterName = d.string(); d.err != nil {
		return 0, argsError(name, 3, d.err)
	}
	if m.IDTimestamp = d.optFloat(); d.err != nil {
		return 0, argsError(name, 4, d.err)
	}
	if m.Extra = d.dict(); d.err != nil {
		return 0, argsError(name, 5, d.err)
	}
	return d.i, nil
}

func (*AcceptIdentification) NEOMsgCode() uint16 { return 0x8001 }
func (m *AcceptIdentification) NEOMsgEncode(b []byte) []byte {
	b = append(b, 0x93)
	b = appendEnum(b, ExtNodeTypes, uint8(m.NodeType))
	b = appendNodeID(b, m.MyNID)
	return appendNodeID(b, m.YourNID)
}
func (m *AcceptIdentification) NEOMsgDecode(data []byte) (int, error) {
	const name = "AcceptIdentification"
	d := decoder{b: data}
	if d.tuple(3); d.err != nil {
		return 0, argsError(name, -1, d.err)
	}
	if m.NodeType = d.nodeType(); d.err != nil {
		return 0, argsError(name, 0, d.err)
	}
	if m.MyNID = d.nodeID(); d.err != nil {
		return 0, argsError(name, 1, d.err)
	}
	if m.YourNID = d.nodeID(); d.err != nil {
		return 0, argsError(name, 2, d.err)
	}
	return d.i, nil
}

func (*Ping) NEOMsgCode() uint16             { return 2 }
func (m *Ping) NEOMsgEncode(b []byte) []byte { return append(b, 0x90) }
func (m *Ping) NEOMsgDecode(data []byte) (int, error) {
	d := decoder{b: data}
	if d.tuple(0); d.err != nil {
		return 0, argsError("Ping", -1, d.err)
	}
	return d.i, nil
}

func (*Pong) NEOMsgCode() uint16             { return 0x8002 }
func (m *Pong) NEOMsgEncode(b []byte) []byte { return append(b, 0x90) }
func (m *Pong) NEOMsgDecode(data []byte) (int, error) {
	d := decoder{b: data}
	if d.tuple(0); d.err != nil {
		return 0, argsError("Pong", -1, d.err)
	}
	return d.i, nil
}

func (*NotifyNodeInformation) NEOMsgCode() uint16 { return 6 }
func (m *NotifyNodeInformation) NEOMsgEncode(b []byte) []byte {
	b = append(b, 0x92)
	b = appendFloat(b, m.Timestamp)
	b = appendArrayHeader(b, len(m.NodeList))
	for _, n := range m.NodeList {
		b = append(b, 0x95)
		b = appendEnum(b, ExtNodeTypes, uint8(n.Type))
		b = appendAddr(b, n.Addr)
		b = appendNodeID(b, n.NID)
		b = appendEnum(b, ExtNodeStates, uint8(n.State))
		b = appendOptFloat(b, n.IDTimestamp)
	}
	return b
}
func (m *NotifyNodeInformation) NEOMsgDecode(data []byte) (int, error) {
	const name = "NotifyNodeInformation"
	d := decoder{b: data}
	if d.tuple(2); d.err != nil {
		return 0, argsError(name, -1, d.err)
	}
	if m.Timestamp = d.float(); d.err != nil {
		return 0, argsError(name, 0, d.err)
	}
	n := d.arrayHeader(6)
	m.NodeList = nil
	if n > 0 {
		m.NodeList = make([]NodeInfo, n)
	}
	for i := range m.NodeList {
		e := &m.NodeList[i]
		d.tuple(5)
		e.Type = d.nodeType()
		e.Addr = d.addr()
		e.NID = d.nodeID()
		e.State = d.nodeState()
		e.IDTimestamp = d.optFloat()
		if d.err != nil {
			break
		}
	}
	if d.err != nil {
		return 0, argsError(name, 1, d.err)
	}
	return d.i, nil
}
