package switchboard

// The host API, one wrapper per WIT import. Each copies the import's results out of the
// argument arena and gives the space back before it returns (defer release(hold())).

import (
	"strings"

	api "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_api"
	raw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_types"
	wit "switchboard.dev/sdk/internal/wit/types"
)

// SendToClient queues msg to the client; a well-formed id of a client that is gone: nothing
// is sent and no error is returned.
func SendToClient(client string, msg Message) error {
	defer release(hold())
	return unit(api.SendToClient(client, msg.toRaw()))
}

// SendToUID sends to every client bound to uid, except those in without.
func SendToUID(uid string, msg Message, without ...string) error {
	defer release(hold())
	return unit(api.SendToUid(uid, msg.toRaw(), without))
}

// SendToGroup sends to every member of group on every gateway, except those in without.
func SendToGroup(group string, msg Message, without ...string) error {
	defer release(hold())
	return unit(api.SendToGroup(group, msg.toRaw(), without))
}

// SendToUIDs sends to every client bound to any of uids (at most 1000), except those in
// without: one call and one bus message per gateway; a client reached twice gets it once.
func SendToUIDs(uids []string, msg Message, without ...string) error {
	defer release(hold())
	return unit(api.SendToUids(uids, msg.toRaw(), without))
}

// SendToGroups sends to every member of any of groups (at most 1000), once each, except
// those in without.
func SendToGroups(groups []string, msg Message, without ...string) error {
	defer release(hold())
	return unit(api.SendToGroups(groups, msg.toRaw(), without))
}

// SendToClients queues msg to each listed client (at most 1000) once.
func SendToClients(clients []string, msg Message) error {
	defer release(hold())
	return unit(api.SendToClients(clients, msg.toRaw()))
}

// SendToAll sends to every connected client that finished its handshake, except those in without.
func SendToAll(msg Message, without ...string) error {
	defer release(hold())
	return unit(api.SendToAll(msg.toRaw(), without))
}

func flag(r wit.Result[bool, raw.Error]) (bool, error) {
	if r.IsErr() {
		return false, fromRawError(r.Err())
	}
	return r.Ok(), nil
}

// IsOnline reports whether the client is connected now.
func IsOnline(client string) (bool, error) {
	defer release(hold())
	return flag(api.IsOnline(client))
}

// IsUIDOnline reports whether at least one client is bound to uid.
func IsUIDOnline(uid string) (bool, error) {
	defer release(hold())
	return flag(api.IsUidOnline(uid))
}

func count(r wit.Result[uint64, raw.Error]) (uint64, error) {
	if r.IsErr() {
		return 0, fromRawError(r.Err())
	}
	return r.Ok(), nil
}

// GetClientCount is the number of connected clients (handshake finished) in the cluster.
func GetClientCount() (uint64, error) {
	defer release(hold())
	return count(api.GetClientCount())
}

// GetClientCountByGroup is the number of members of group.
func GetClientCountByGroup(group string) (uint64, error) {
	defer release(hold())
	return count(api.GetClientCountByGroup(group))
}

// GetUIDCountByGroup is the exact number of distinct uids among the members of group.
func GetUIDCountByGroup(group string) (uint64, error) {
	defer release(hold())
	return count(api.GetUidCountByGroup(group))
}

// GetUIDCount is the exact number of distinct bound uids in the cluster.
func GetUIDCount() (uint64, error) {
	defer release(hold())
	return count(api.GetUidCount(wit.None[float32]()))
}

// GetUIDCountEstimate is the sum of each gateway's distinct-uid count multiplied by p: a
// cheap estimate.
func GetUIDCountEstimate(p float32) (uint64, error) {
	defer release(hold())
	return count(api.GetUidCount(wit.Some(p)))
}

func names(r wit.Result[[]string, raw.Error]) ([]string, error) {
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	return cloneStrings(r.Ok()), nil
}

// GetClientList is one page of connected clients sorted by id, strictly after `after` (""
// for the first page), at most limit (1..=1000). An empty page means the end; Clients walks
// every page for you.
func GetClientList(after string, limit uint32) ([]string, error) {
	defer release(hold())
	return names(api.GetClientList(cursor(after), limit))
}

// GetClientListByGroup is like GetClientList, members of group only.
func GetClientListByGroup(group, after string, limit uint32) ([]string, error) {
	defer release(hold())
	return names(api.GetClientListByGroup(group, cursor(after), limit))
}

// GetClientListByUID is like GetClientList, clients bound to uid only.
func GetClientListByUID(uid, after string, limit uint32) ([]string, error) {
	defer release(hold())
	return names(api.GetClientListByUid(uid, cursor(after), limit))
}

// GetUIDListPaged is one page of bound uids, sorted, each once, strictly after `after` (""
// for the first page), at most limit (1..=1000). An empty page means the end; UIDs walks
// every page for you.
func GetUIDListPaged(after string, limit uint32) ([]string, error) {
	defer release(hold())
	return names(api.GetUidListPaged(cursor(after), limit))
}

// GetUIDListByGroupPaged is like GetUIDListPaged, uids bound to members of group only.
func GetUIDListByGroupPaged(group, after string, limit uint32) ([]string, error) {
	defer release(hold())
	return names(api.GetUidListByGroupPaged(group, cursor(after), limit))
}

// GetGroupListPaged is one page of groups that have members, sorted, strictly after `after`.
func GetGroupListPaged(after string, limit uint32) ([]string, error) {
	defer release(hold())
	return names(api.GetGroupListPaged(cursor(after), limit))
}

// GetUIDList is the bound uids, sorted; unique: each once across the cluster (the
// expensive query), else each gateway's list concatenated. The whole list is one call's
// result: prefer UIDs, which pages.
func GetUIDList(unique bool) ([]string, error) {
	defer release(hold())
	return names(api.GetUidList(unique))
}

// GetUIDListByGroup is the uids bound to members of group, sorted; unique as in GetUIDList.
func GetUIDListByGroup(group string, unique bool) ([]string, error) {
	defer release(hold())
	return names(api.GetUidListByGroup(group, unique))
}

// GetGroupList is the groups that have members, sorted; unique as in GetUIDList.
func GetGroupList(unique bool) ([]string, error) {
	defer release(hold())
	return names(api.GetGroupList(unique))
}

// ClientSession is a client with its session, as the sessions pages hold them.
type ClientSession struct {
	Client  string
	Session Session
}

func sessionsPage(r wit.Result[[]wit.Tuple2[string, []wit.Tuple2[string, string]], raw.Error]) ([]ClientSession, error) {
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	rows := r.Ok()
	out := make([]ClientSession, len(rows))
	for i, row := range rows {
		out[i] = ClientSession{Client: strings.Clone(row.F0), Session: sessionFromRaw(row.F1)}
	}
	return out, nil
}

// GetClientSessions is one page of connected clients with their sessions, sorted by id,
// strictly after `after` ("" for the first page), at most limit (a page also stops at about
// 256 KiB of sessions): GatewayWorker's getAllClientSessions, paged. Sessions walks every page.
func GetClientSessions(after string, limit uint32) ([]ClientSession, error) {
	defer release(hold())
	return sessionsPage(api.GetClientSessions(cursor(after), limit))
}

// GetClientSessionsByGroup is like GetClientSessions, members of group only.
func GetClientSessionsByGroup(group, after string, limit uint32) ([]ClientSession, error) {
	defer release(hold())
	return sessionsPage(api.GetClientSessionsByGroup(group, cursor(after), limit))
}

// GetClientCountByGroups is the member count of each of groups (at most 1000); 0 for a
// group without members.
func GetClientCountByGroups(groups []string) (map[string]uint64, error) {
	defer release(hold())
	r := api.GetClientCountByGroups(groups)
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	out := make(map[string]uint64)
	for _, row := range r.Ok() {
		out[strings.Clone(row.F0)] = row.F1
	}
	return out, nil
}

// GetClientIDsByUIDs is the sorted clients bound to each of uids (at most 1000); an empty
// list for an offline uid.
func GetClientIDsByUIDs(uids []string) (map[string][]string, error) {
	defer release(hold())
	r := api.GetClientIdsByUids(uids)
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	out := make(map[string][]string)
	for _, row := range r.Ok() {
		out[strings.Clone(row.F0)] = cloneStrings(row.F1)
	}
	return out, nil
}

// InfoFields chooses what GetClientInfo fills; there is no default: pass AllFields for all.
type InfoFields uint8

// The fields of GetClientInfo.
const (
	FieldRemoteIP   InfoFields = InfoFields(raw.ClientInfoFields_RemoteIp)
	FieldRemotePort InfoFields = InfoFields(raw.ClientInfoFields_RemotePort)
	FieldUID        InfoFields = InfoFields(raw.ClientInfoFields_Uid)
	FieldSession    InfoFields = InfoFields(raw.ClientInfoFields_Session)
	FieldGroups     InfoFields = InfoFields(raw.ClientInfoFields_Groups)
	FieldSystem     InfoFields = InfoFields(raw.ClientInfoFields_System)
	// AllFields asks for everything (SwooleWorker's 255).
	AllFields = FieldRemoteIP | FieldRemotePort | FieldUID | FieldSession | FieldGroups | FieldSystem
)

// SystemInfo is what the gateway keeps about a connection.
type SystemInfo struct {
	Protocol      string // "websocket", "text" or "frame"
	ConnectedAtMs uint64
	LastActiveMs  uint64
	BytesIn       uint64
	BytesOut      uint64
	GatewayID     uint32
}

// ClientInfo is what GetClientInfo returns. Each field is there (ok) only if it was asked
// for (and, for the uid, bound).
type ClientInfo struct {
	// Client is the client this is about.
	Client     string
	remoteIP   string
	remotePort uint16
	uid        string
	session    Session
	groups     []string
	system     SystemInfo
	has        InfoFields
}

// RemoteIP is the client's IP address.
func (c ClientInfo) RemoteIP() (string, bool) { return c.remoteIP, c.has&FieldRemoteIP != 0 }

// RemotePort is the client's port.
func (c ClientInfo) RemotePort() (uint16, bool) {
	return c.remotePort, c.has&FieldRemotePort != 0
}

// UID is the uid the client is bound to.
func (c ClientInfo) UID() (string, bool) { return c.uid, c.has&FieldUID != 0 }

// Session is the client's session.
func (c ClientInfo) Session() (Session, bool) { return c.session, c.has&FieldSession != 0 }

// Groups is the groups the client is a member of, sorted.
func (c ClientInfo) Groups() ([]string, bool) { return c.groups, c.has&FieldGroups != 0 }

// System is the connection's facts.
func (c ClientInfo) System() (SystemInfo, bool) { return c.system, c.has&FieldSystem != 0 }

// GetClientInfo returns the asked fields of what the gateway knows about the client; ok is
// false if the client is unknown.
func GetClientInfo(client string, fields InfoFields) (ClientInfo, bool, error) {
	defer release(hold())
	r := api.GetClientInfo(client, raw.ClientInfoFields(fields))
	if r.IsErr() {
		return ClientInfo{}, false, fromRawError(r.Err())
	}
	o := r.Ok()
	if o.IsNone() {
		return ClientInfo{}, false, nil
	}
	c := o.Some()
	info := ClientInfo{Client: strings.Clone(c.Client)}
	if c.RemoteIp.IsSome() {
		info.remoteIP, info.has = strings.Clone(c.RemoteIp.Some()), info.has|FieldRemoteIP
	}
	if c.RemotePort.IsSome() {
		info.remotePort, info.has = c.RemotePort.Some(), info.has|FieldRemotePort
	}
	if c.Uid.IsSome() {
		info.uid, info.has = strings.Clone(c.Uid.Some()), info.has|FieldUID
	}
	if c.Session.IsSome() {
		info.session, info.has = sessionFromRaw(c.Session.Some()), info.has|FieldSession
	}
	if c.Groups.IsSome() {
		info.groups, info.has = cloneStrings(c.Groups.Some()), info.has|FieldGroups
	}
	if c.System.IsSome() {
		s := c.System.Some()
		protocol := [...]string{"websocket", "text", "frame"}[s.Protocol%3]
		info.system = SystemInfo{protocol, s.ConnectedAtMs, s.LastActiveMs, s.BytesIn, s.BytesOut, s.GatewayId}
		info.has |= FieldSystem
	}
	return info, true, nil
}

// CloseClient closes the client: force false flushes what was queued first, then a clean
// close; force true drops it at once. OnClose follows once.
func CloseClient(client string, force bool) error {
	defer release(hold())
	return unit(api.CloseClient(client, force))
}

// CloseClientWith sends msg, then closes the client cleanly with msg flushed first.
func CloseClientWith(client string, msg Message) error {
	defer release(hold())
	return unit(api.CloseClientWith(client, msg.toRaw()))
}

// BindUID binds the client to uid; a client bound to another uid is moved.
func BindUID(client, uid string) error {
	defer release(hold())
	return unit(api.BindUid(client, uid))
}

// UnbindUID clears the client's uid; nothing happens if it has none.
func UnbindUID(client string) error {
	defer release(hold())
	return unit(api.UnbindUid(client))
}

// JoinGroup makes the client a member of group.
func JoinGroup(client, group string) error {
	defer release(hold())
	return unit(api.JoinGroup(client, group))
}

// LeaveGroup removes the client from group.
func LeaveGroup(client, group string) error {
	defer release(hold())
	return unit(api.LeaveGroup(client, group))
}

// Ungroup removes every membership of group on every gateway; clients stay connected.
func Ungroup(group string) error {
	defer release(hold())
	return unit(api.Ungroup(group))
}

// SetSession replaces the client's session.
func SetSession(client string, s Session) error {
	defer release(hold())
	return unit(api.SetSession(client, sessionToRaw(s)))
}

// UpdateSession merges into the client's session: given keys overwrite, the others stay.
func UpdateSession(client string, s Session) error {
	defer release(hold())
	return unit(api.UpdateSession(client, sessionToRaw(s)))
}

// DeleteSession empties the client's session.
func DeleteSession(client string) error {
	defer release(hold())
	return unit(api.DeleteSession(client))
}

// GetSession returns the client's session (empty if it has none); ok is false if the client
// is unknown.
func GetSession(client string) (Session, bool, error) {
	defer release(hold())
	r := api.GetSession(client)
	if r.IsErr() {
		return nil, false, fromRawError(r.Err())
	}
	o := r.Ok()
	if o.IsNone() {
		return nil, false, nil
	}
	return sessionFromRaw(o.Some()), true, nil
}

// SetTimer fires OnTimer on this instance after afterMs (1..=86 400 000) milliseconds, and
// every afterMs from then on if repeat.
func SetTimer(afterMs uint64, repeat bool) (uint64, error) {
	defer release(hold())
	return count(api.SetTimer(afterMs, repeat))
}

// ClearTimer cancels a timer of this instance; unknown ids are ignored.
func ClearTimer(id uint64) { api.ClearTimer(id) }
