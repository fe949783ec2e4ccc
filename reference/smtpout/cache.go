package smtpout

import (
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// A session with a named next hop (a smart host, a server of the organisation) that
// ended well is kept for the next message to the same hop, as Exchange's send
// connectors reuse a connection for up to 20 messages (MaxMessagesPerConnection) and
// Postfix's smtp client keeps one in its connection cache: the next message skips the
// connection, the greeting, EHLO and the STARTTLS handshake. Sessions with an MX of
// the recipient's domain are not kept: each message makes its own first choice among
// MXs of equal preference (DNS-003), so load spreads over them message by message.
const (
	// ReuseLimit is how many messages one session carries at most.
	ReuseLimit = 20
	// IdleLimit is how long a kept session waits for its next message, as Postfix's
	// smtp_connection_cache_time_limit (2 s): long enough for a queue's backlog, short
	// enough that a next hop does not hold idle sessions.
	IdleLimit = 2 * time.Second
)

// sessionKey is what a kept session may be reused for: the same address reached under
// the same name, with the same TLS requirement and the same login.
type sessionKey struct {
	addr, name, user string
	tls              bool
}

// session is one SMTP session with a next hop.
type session struct {
	cl   *smtp.Client
	conn net.Conn
	uses int
	// broken is set when the connection failed rather than the next hop answering:
	// such a session is never kept.
	broken bool
	// mailFailed says the last transaction got no further than MAIL; dirty, that the
	// next hop still holds one.
	mailFailed, dirty bool
	idle              *time.Timer
}

// cache holds the sessions kept between messages.
type cache struct {
	mu     sync.Mutex
	kept   map[sessionKey][]*session
	closed bool
}

// take hands out the session for key kept last, or nil. It is not probed: a session
// the next hop has closed meanwhile fails at MAIL, before any recipient, and the
// caller then opens a new one, which costs what a probe would only when it is needed.
func (c *cache) take(key sessionKey) *session {
	c.mu.Lock()
	ss := c.kept[key]
	if len(ss) == 0 {
		c.mu.Unlock()
		return nil
	}
	s := ss[len(ss)-1]
	c.kept[key] = ss[:len(ss)-1]
	c.mu.Unlock()
	// Whoever removes a session from kept owns it: an idle timer that fires now finds
	// it gone and leaves it alone.
	s.idle.Stop()
	s.mailFailed = false
	return s
}

// put keeps s for the next message to key, or ends it with QUIT when it has carried
// its share or the cache is closed.
func (c *cache) put(key sessionKey, s *session) {
	c.mu.Lock()
	if c.closed || s.broken || s.uses >= ReuseLimit {
		c.mu.Unlock()
		go s.quit()
		return
	}
	if c.kept == nil {
		c.kept = map[sessionKey][]*session{}
	}
	c.kept[key] = append(c.kept[key], s)
	s.idle = time.AfterFunc(IdleLimit, func() {
		if c.remove(key, s) {
			s.quit()
		}
	})
	c.mu.Unlock()
}

// remove takes s out of the cache; false when somebody else already has.
func (c *cache) remove(key sessionKey, s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.kept[key]
	for i, x := range ss {
		if x == s {
			c.kept[key] = append(ss[:i:i], ss[i+1:]...)
			if len(c.kept[key]) == 0 {
				delete(c.kept, key)
			}
			return true
		}
	}
	return false
}

// close ends every kept session and keeps none from now on.
func (c *cache) close() {
	c.mu.Lock()
	c.closed = true
	var all []*session
	for _, ss := range c.kept {
		all = append(all, ss...)
	}
	c.kept = nil
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		s.idle.Stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.quit()
		}()
	}
	wg.Wait()
}

// begin counts a message the session carries and gives it timeout to do so.
func (s *session) begin(timeout time.Duration) {
	s.uses++
	_ = s.conn.SetDeadline(time.Now().Add(timeout))
}

// quit ends the session politely, within a second.
func (s *session) quit() {
	_ = s.conn.SetDeadline(time.Now().Add(time.Second))
	_ = s.cl.Quit()
	_ = s.cl.Close()
}
