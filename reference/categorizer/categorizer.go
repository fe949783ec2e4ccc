package categorizer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/ttlcache"
)

// Kind is what a recipient resolved to.
type Kind string

const (
	// KindMailbox is a mailbox in the organisation; Result.Server holds it.
	KindMailbox Kind = "mailbox"
	// KindExternal is a contact's (or mail user's) target address, routed by Send
	// connector selection.
	KindExternal Kind = "external"
	// KindFailed is a permanent failure: the recipient gets an NDR.
	KindFailed Kind = "failed"
)

// Enhanced status codes (RFC 3463) of failed results.
const (
	// StatusUnknown (X.1.1 bad destination mailbox address): no recipient has the address.
	StatusUnknown = "5.1.1"
	// StatusInvalidObject (X.3.0 other or undefined mail system status): the address
	// belongs to a directory object that lacks what delivery needs (a mailbox without
	// a home server, a contact without a target, an object without a primary address).
	// Not X.1.x, as the address is valid and found; not X.2.x, which RFC 3463 reserves
	// for mailbox conditions "under the general control of the recipient" (disabled,
	// full). A broken directory object is under the control of the destination
	// system's administrator, which is what X.3.x covers.
	StatusInvalidObject = "5.3.0"
	// StatusLoop (X.4.6 routing loop detected): mailboxes forwarding in a circle (a
	// broken recipient loop, CAT-005), or group nesting or a forwarding chain deeper
	// than the limit, the guard against loops the categorizer cannot otherwise see.
	StatusLoop = "5.4.6"
)

// Result is the resolution of one final recipient.
type Result struct {
	// Original is the envelope address as received that led here (the outermost
	// recipient for a group's members); it becomes ORCPT when Address differs.
	Original string
	// Address is the primary SMTP address (mailbox), the target address (external),
	// or, for a failed result, the primary address if the object was found, else the
	// address looked up.
	Address string
	Kind    Kind
	// Server is the mailbox server owning the homeMDB database (KindMailbox only).
	Server string
	// ExpandedFrom lists the primary addresses of the groups the recipient was
	// reached through, outermost first; empty when it was addressed directly.
	ExpandedFrom []string
	// ForwardedFrom lists the primary addresses of the mailboxes whose forwarding
	// (altRecipient) led here, first first; empty when none did.
	ForwardedFrom []string
	// Status is the enhanced status code of a failed result, Reason its text.
	Status string
	Reason string
}

// Directory finds a recipient by any of its addresses. *directory.Client implements it.
// Lookup returns an error wrapping directory.ErrNotFound when no recipient has addr;
// any other error is taken as the directory being unable to answer.
type Directory interface {
	Lookup(ctx context.Context, addr string) (*directory.Entry, error)
}

// ErrTemporary is wrapped by every error Resolve returns: the directory could not
// answer, so the recipients must be retried later (4xx at RCPT, or stay queued with a
// 4.4.3 delay DSN), never bounced as unknown (CAT-006).
var ErrTemporary = errors.New("categorizer: directory temporarily unavailable")

// IsTemporary reports whether err is, or wraps, ErrTemporary.
func IsTemporary(err error) bool { return errors.Is(err, ErrTemporary) }

const (
	defaultTTL      = 5 * time.Minute
	defaultMaxDepth = 10
)

// Option configures a Categorizer.
type Option func(*Categorizer)

// WithClock sets the clock the cache expires on (default wall time).
func WithClock(c clock.Clock) Option {
	return func(cat *Categorizer) {
		if c != nil {
			cat.clock = c
		}
	}
}

// WithTTL sets how long a directory answer, "not found" included, is reused (default
// 5m). Zero or less disables the cache.
func WithTTL(d time.Duration) Option { return func(cat *Categorizer) { cat.ttl = d } }

// WithMaxDepth sets how many groups deep expansion goes (default 10: a group in a group
// ... ten groups in all). Values below 1 are ignored.
func WithMaxDepth(n int) Option {
	return func(cat *Categorizer) {
		if n >= 1 {
			cat.maxDepth = n
		}
	}
}

// Categorizer resolves envelope recipients. It is safe for concurrent use.
type Categorizer struct {
	dir      Directory
	clock    clock.Clock
	ttl      time.Duration
	maxDepth int

	// cache holds answers by lower-case address: an entry, or nil for "no such
	// recipient".
	cache *ttlcache.Cache[*directory.Entry]
}

// New makes a categorizer asking dir.
func New(dir Directory, opts ...Option) *Categorizer {
	c := &Categorizer{
		dir: dir, clock: clock.Real{}, ttl: defaultTTL, maxDepth: defaultMaxDepth,
	}
	for _, o := range opts {
		o(c)
	}
	c.cache = ttlcache.New[*directory.Entry](c.clock, c.ttl)
	return c
}

// Resolve resolves rcpts, in order, into one Result per final recipient: groups are
// replaced by their members, and an address reached twice (the same recipient given
// twice, under two proxies, or through two groups) yields only the first Result, so
// some rcpts may have none. Results come in depth-first order of rcpts and members.
//
// If the directory cannot answer for any recipient, Resolve returns no results and an
// error for which IsTemporary is true, which also wraps the directory's error
// (directory.IsUnavailable holds for a *directory.Client's outage).
func (c *Categorizer) Resolve(ctx context.Context, rcpts []string) ([]Result, error) {
	r := &run{c: c, done: make(map[string]bool, len(rcpts)), groups: map[string]bool{}}
	if len(rcpts) > 0 {
		r.out = make([]Result, 0, len(rcpts))
	}
	for _, rcpt := range rcpts {
		if err := r.resolve(ctx, rcpt, rcpt, trail{}); err != nil {
			return nil, err
		}
	}
	return r.out, nil
}

// run is the state of one Resolve call.
type run struct {
	c      *Categorizer
	done   map[string]bool // lower-case final addresses given a Result
	groups map[string]bool // lower-case primary addresses of groups expanded
	out    []Result
}

// trail is how a recipient was reached from its envelope recipient: through groups,
// then through forwarding mailboxes.
type trail struct {
	groups, forwards []string
}

// resolve resolves addr, reached from the envelope recipient orig along t.
func (r *run) resolve(ctx context.Context, orig, addr string, t trail) error {
	e, err := r.c.lookup(ctx, addr)
	if err != nil {
		return err
	}
	path := t.groups
	base := Result{Original: orig, Address: addr, ExpandedFrom: slices.Clone(path), ForwardedFrom: slices.Clone(t.forwards)}
	if e == nil {
		r.fail(base, StatusUnknown, "no recipient with this address")
		return nil
	}
	if e.Mail == "" {
		r.fail(base, StatusInvalidObject, fmt.Sprintf("invalid directory object %s: no primary SMTP address", e.DN))
		return nil
	}
	base.Address = e.Mail
	switch e.Type {
	case directory.TypeGroup:
		key := strings.ToLower(e.Mail)
		if r.groups[key] {
			// Expanded already in this call: a group containing itself, a cycle, or a
			// second path to the group. Its members have their Results.
			return nil
		}
		r.groups[key] = true
		if len(path) >= r.c.maxDepth {
			r.fail(base, StatusLoop, fmt.Sprintf("group nesting deeper than %d groups: possible loop", r.c.maxDepth))
			return nil
		}
		inner := trail{groups: append(slices.Clip(path), e.Mail), forwards: t.forwards}
		for _, m := range e.Members {
			if err := r.resolve(ctx, orig, m, inner); err != nil {
				return err
			}
		}
	case directory.TypeMailbox:
		switch {
		case e.ForwardTo != "":
			return r.forward(ctx, orig, e, base, t)
		case e.MailboxServer != "":
			base.Kind, base.Server = KindMailbox, e.MailboxServer
			r.add(base)
		case e.External != "":
			// A mail user: in the directory, its mailbox elsewhere (CAT-004).
			base.Kind, base.Address = KindExternal, e.External
			r.add(base)
		default:
			r.fail(base, StatusInvalidObject, fmt.Sprintf("invalid directory object %s: mailbox without homeMDB or home server", e.DN))
		}
	case directory.TypeContact:
		if e.External == "" {
			r.fail(base, StatusInvalidObject, fmt.Sprintf("invalid directory object %s: contact without targetAddress", e.DN))
			return nil
		}
		base.Kind, base.Address = KindExternal, e.External
		r.add(base)
	default:
		r.fail(base, StatusInvalidObject, fmt.Sprintf("invalid directory object %s: unknown type %q", e.DN, e.Type))
	}
	return nil
}

// forward follows a mailbox's altRecipient. A forwarding target already on the trail
// is a broken recipient loop: the recipient fails with an NDR instead of circling
// (CAT-005).
func (r *run) forward(ctx context.Context, orig string, e *directory.Entry, base Result, t trail) error {
	chain := append(slices.Clip(t.forwards), e.Mail)
	for _, f := range chain {
		if strings.EqualFold(f, e.ForwardTo) {
			r.fail(base, StatusLoop, fmt.Sprintf("forwarding loop: %s -> %s", strings.Join(chain, " -> "), e.ForwardTo))
			return nil
		}
	}
	if len(chain) > r.c.maxDepth {
		r.fail(base, StatusLoop, fmt.Sprintf("forwarding chain longer than %d mailboxes: possible loop", r.c.maxDepth))
		return nil
	}
	return r.resolve(ctx, orig, e.ForwardTo, trail{groups: t.groups, forwards: chain})
}

func (r *run) fail(res Result, status, reason string) {
	res.Kind, res.Status, res.Reason = KindFailed, status, reason
	r.add(res)
}

// add keeps res unless its address already has a Result in this call.
func (r *run) add(res Result) {
	key := strings.ToLower(res.Address)
	if r.done[key] {
		return
	}
	r.done[key] = true
	r.out = append(r.out, res)
}

// lookup asks the cache, then the directory. A nil entry and nil error mean no
// recipient has addr; answers are cached, errors are not.
func (c *Categorizer) lookup(ctx context.Context, addr string) (*directory.Entry, error) {
	key := strings.ToLower(addr)
	if e, ok := c.cache.Get(key); ok {
		return e, nil
	}
	e, err := c.dir.Lookup(ctx, addr)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		e = nil
	case err != nil:
		return nil, fmt.Errorf("%w: resolving %s: %w", ErrTemporary, addr, err)
	}
	c.cache.Put(key, e)
	return e, nil
}
