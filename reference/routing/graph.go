package routing

import (
	"container/heap"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mailflow/mailflow/scenario"
)

// ErrNoPath means no chain of site links joins two sites.
var ErrNoPath = errors.New("no site-link path")

// Graph is the organisation's routing topology: sites, the links between them with
// their routing costs and size limits, hub sites, and the site of every server. It is
// built once from the scenario and never changes with link or server state (ROUTE-004).
//
// An Exchange 2003 organisation's routing groups are nodes of the same graph, and its
// routing group connectors one-way links between them (ROUTE-019), so both kinds of
// organisation share one least-cost search. Link state does not change the graph
// either: a server's view of which connectors are down is passed to PathAvoiding
// (ROUTE-020).
type Graph struct {
	sites  []string // canonical names, sorted: sites and routing groups
	rank   []int    // each site's place in lower-case name order, for the name rule
	index  map[string]int
	hub    []bool
	group  []bool            // the node is a routing group
	adj    [][]link          // links leaving each node
	radj   [][]link          // links arriving at each node, to: where they come from
	server map[string]string // lower-case server name -> site or routing group
	conns  []Connector
	connIx map[string]int
}

type link struct {
	to      int
	cost    int
	maxSize int
	conn    int // routing group connector index; -1 for a site link
}

// Connector is a routing group connector as the graph knows it.
type Connector struct {
	Name, From, To    string
	Cost              int
	LocalBridgeheads  []string
	RemoteBridgeheads []string
}

// Down says, by routing group connector name in lower case, which connectors a
// server holds as down; nil holds every one up.
type Down map[string]bool

// NewGraph builds the graph of a validated scenario.
func NewGraph(s *scenario.Scenario) (*Graph, error) {
	g := &Graph{index: map[string]int{}, server: map[string]string{}, connIx: map[string]int{}}
	for _, st := range s.Org.Sites {
		g.sites = append(g.sites, st.Name)
	}
	for _, rg := range s.Org.RoutingGroups {
		g.sites = append(g.sites, rg.Name)
	}
	sort.Strings(g.sites)
	g.hub = make([]bool, len(g.sites))
	g.group = make([]bool, len(g.sites))
	g.adj = make([][]link, len(g.sites))
	g.radj = make([][]link, len(g.sites))
	for i, n := range g.sites {
		g.index[strings.ToLower(n)] = i
	}
	byLower := make([]int, len(g.sites))
	for i := range byLower {
		byLower[i] = i
	}
	sort.Slice(byLower, func(i, j int) bool {
		return strings.ToLower(g.sites[byLower[i]]) < strings.ToLower(g.sites[byLower[j]])
	})
	g.rank = make([]int, len(g.sites))
	for r, i := range byLower {
		g.rank[i] = r
	}
	for _, st := range s.Org.Sites {
		g.hub[g.index[strings.ToLower(st.Name)]] = st.Hub
	}
	for i, l := range s.Org.SiteLinks {
		if len(l.Sites) != 2 {
			return nil, fmt.Errorf("routing: site link %d: want 2 sites, got %d", i, len(l.Sites))
		}
		a, okA := g.index[strings.ToLower(l.Sites[0])]
		b, okB := g.index[strings.ToLower(l.Sites[1])]
		if !okA || !okB {
			return nil, fmt.Errorf("routing: site link %d: unknown site in %v", i, l.Sites)
		}
		cost := l.Cost
		if l.ExchangeCost > 0 {
			cost = l.ExchangeCost // ROUTE-001: the Exchange cost replaces the AD one
		}
		g.addLink(a, b, cost, l.MaxMessageSize, -1)
		g.addLink(b, a, cost, l.MaxMessageSize, -1)
	}
	for _, sv := range s.Org.Servers {
		if sv.Site != "" {
			g.server[strings.ToLower(sv.Name)] = g.sites[g.index[strings.ToLower(sv.Site)]]
		}
	}
	for _, rg := range s.Org.RoutingGroups {
		i := g.index[strings.ToLower(rg.Name)]
		g.group[i] = true
		for _, sv := range rg.Servers {
			g.server[strings.ToLower(sv)] = g.sites[i]
		}
	}
	for i, c := range s.Org.RoutingGroupConnectors {
		a, okA := g.index[strings.ToLower(c.From)]
		b, okB := g.index[strings.ToLower(c.To)]
		// A site at one end makes the interop connector of an organisation in
		// coexistence (ROUTE-022).
		if !okA || !okB || (!g.group[a] && !g.group[b]) {
			return nil, fmt.Errorf("routing: routing group connector %d: unknown routing group in %s to %s", i, c.From, c.To)
		}
		g.connIx[strings.ToLower(c.Name)] = len(g.conns)
		g.conns = append(g.conns, Connector{Name: c.Name, From: g.sites[a], To: g.sites[b], Cost: c.Cost,
			LocalBridgeheads: append([]string(nil), c.LocalBridgeheads...), RemoteBridgeheads: append([]string(nil), c.RemoteBridgeheads...)})
		g.addLink(a, b, c.Cost, c.MaxMessageSize, len(g.conns)-1)
	}
	return g, nil
}

// addLink adds the one-way link a -> b.
func (g *Graph) addLink(a, b, cost, maxSize, conn int) {
	g.adj[a] = append(g.adj[a], link{to: b, cost: cost, maxSize: maxSize, conn: conn})
	g.radj[b] = append(g.radj[b], link{to: a, cost: cost, maxSize: maxSize, conn: conn})
}

// IsRoutingGroup says whether name is a routing group rather than a site.
func (g *Graph) IsRoutingGroup(name string) bool {
	i, ok := g.index[strings.ToLower(name)]
	return ok && g.group[i]
}

// Connector is the routing group connector called name.
func (g *Graph) Connector(name string) (Connector, bool) {
	i, ok := g.connIx[strings.ToLower(name)]
	if !ok {
		return Connector{}, false
	}
	return g.conns[i], true
}

// Connectors are the routing group connectors, in the scenario's order.
func (g *Graph) Connectors() []Connector { return append([]Connector(nil), g.conns...) }

// OnlyPath says whether a connector is the only way from its routing group to the
// group it leads to: no other chain of links joins them. Such a connector is never
// marked down (ROUTE-021), since routing around it could only hold mail elsewhere.
func (g *Graph) OnlyPath(name string) bool {
	i, ok := g.connIx[strings.ToLower(name)]
	if !ok {
		return false
	}
	c := g.conns[i]
	src, dst := g.index[strings.ToLower(c.From)], g.index[strings.ToLower(c.To)]
	down := make([]bool, len(g.conns))
	down[i] = true
	_, reachable := g.search(dst, src, nil, [2]int{-1, -1}, down)
	return !reachable
}

// down turns a server's Down view into the search's form; nil when nothing is down.
func (g *Graph) downSet(d Down) []bool {
	var out []bool
	for name, isDown := range d {
		if i, ok := g.connIx[strings.ToLower(name)]; ok && isDown {
			if out == nil {
				out = make([]bool, len(g.conns))
			}
			out[i] = true
		}
	}
	return out
}

func isDown(down []bool, l link) bool { return l.conn >= 0 && down != nil && down[l.conn] }

// Sites are the site names, sorted.
func (g *Graph) Sites() []string { return append([]string(nil), g.sites...) }

// SiteOf is the site of a server ("" for one in no site, such as an Edge).
func (g *Graph) SiteOf(server string) string { return g.server[strings.ToLower(server)] }

// IsHub says whether a site is a hub site.
func (g *Graph) IsHub(site string) bool {
	i, ok := g.index[strings.ToLower(site)]
	return ok && g.hub[i]
}

// Tie-break rules, in the order they apply (ROUTE-001, ROUTE-002, ROUTE-003).
const (
	RuleOnlyPath = "only path"
	RuleCost     = "least cost"
	RuleHops     = "fewest hops"
	RuleSiteName = "lowest site name nearest the destination"
)

// Path is one routing decision between two sites, with its reasons.
type Path struct {
	// Sites from the source site to the destination site, both included.
	Sites []string
	// Costs of each link along Sites (len(Sites)-1 entries).
	Costs []int
	Total int
	// TieBreak is the weakest rule that was needed to choose this path over another:
	// RuleOnlyPath when there was no alternative at all.
	TieBreak string
	// Connectors name the routing group connector of each link along Sites ("" for
	// a site link).
	Connectors []string
	// MaxMessageSize is the smallest link size limit along the path (0: none).
	MaxMessageSize int
	hub            []bool
}

// Hops is the number of site links crossed.
func (p Path) Hops() int { return len(p.Sites) - 1 }

// Relays are the sites the source relays through, in order: every hub site on the path
// after the source, then the destination (ROUTE-005, ROUTE-006, ROUTE-007). Without hub
// sites on the path this is the destination alone: direct relay.
func (p Path) Relays() []string {
	var out []string
	for i := 1; i < len(p.Sites)-1; i++ {
		if p.hub[i] {
			out = append(out, p.Sites[i])
		}
	}
	if len(p.Sites) > 1 {
		out = append(out, p.Sites[len(p.Sites)-1])
	}
	return out
}

// NextHop is the site the source hands the message to first.
func (p Path) NextHop() string {
	r := p.Relays()
	if len(r) == 0 {
		return ""
	}
	return r[0]
}

// Backoff is where to queue when the destination's Hubs cannot be reached: the sites of
// the path from the destination back towards the source, source excluded (ROUTE-008).
func (p Path) Backoff() []string {
	var out []string
	for i := len(p.Sites) - 1; i >= 1; i-- {
		out = append(out, p.Sites[i])
	}
	return out
}

// String is the decision as the ROUTE trace event states it.
func (p Path) String() string {
	if len(p.Sites) == 1 {
		return fmt.Sprintf("site %s: local delivery", p.Sites[0])
	}
	var b strings.Builder
	b.WriteString(p.Sites[0])
	for i, c := range p.Costs {
		if i < len(p.Connectors) && p.Connectors[i] != "" {
			fmt.Fprintf(&b, " -(%s, %d)-> %s", p.Connectors[i], c, p.Sites[i+1])
			continue
		}
		fmt.Fprintf(&b, " -(%d)-> %s", c, p.Sites[i+1])
	}
	fmt.Fprintf(&b, "; cost %d, %d hop", p.Total, p.Hops())
	if p.Hops() != 1 {
		b.WriteString("s")
	}
	if len(p.Connectors) > 0 && p.Connectors[0] != "" {
		fmt.Fprintf(&b, "; decided by %s", p.TieBreak)
		return b.String()
	}
	fmt.Fprintf(&b, "; relay via %s; decided by %s", strings.Join(p.Relays(), " -> "), p.TieBreak)
	return b.String()
}

// label orders paths from the destination outwards: total cost, then hops, then the
// site names nearest the destination first. Appending the same link to two labels keeps
// their order, so Dijkstra's search stays exact under this order.
type label struct {
	cost, hops int
	seq        []int // site indices from the destination outwards, destination first
}

// compare returns <0 when a is better, and which rule told them apart (1 cost, 2 hops,
// 3 names; 0 when equal).
func (g *Graph) compare(a, b label) (int, int) {
	if a.cost != b.cost {
		return a.cost - b.cost, 1
	}
	if a.hops != b.hops {
		return a.hops - b.hops, 2
	}
	for i := 1; i < len(a.seq) && i < len(b.seq); i++ {
		if a.seq[i] != b.seq[i] {
			return g.rank[a.seq[i]] - g.rank[b.seq[i]], 3
		}
	}
	return 0, 0
}

var rules = []string{RuleOnlyPath, RuleCost, RuleHops, RuleSiteName}

// Path is the least-cost path from one site to another (ROUTE-001, ROUTE-002,
// ROUTE-003, ROUTE-004), with the rule that set it apart from the next-best path.
func (g *Graph) Path(from, to string) (Path, error) { return g.PathAvoiding(from, to, nil) }

// PathAvoiding is the least-cost path over the links a server holds up: its routing
// group connectors in down are left out (ROUTE-020). The rules and their order are
// Path's.
func (g *Graph) PathAvoiding(from, to string, down Down) (Path, error) {
	src, dst, err := g.ends(from, to)
	if err != nil {
		return Path{}, err
	}
	ds := g.downSet(down)
	l, ok := g.search(dst, src, nil, [2]int{-1, -1}, ds)
	if !ok {
		return Path{}, fmt.Errorf("routing: %s to %s: %w", g.sites[src], g.sites[dst], ErrNoPath)
	}
	p := g.pathOfAvoiding(l, ds)
	p.TieBreak = rules[g.decider(l, src, dst, ds)]
	return p, nil
}

func (g *Graph) ends(from, to string) (int, int, error) {
	src, ok := g.index[strings.ToLower(from)]
	if !ok {
		return 0, 0, fmt.Errorf("routing: unknown site %q", from)
	}
	dst, ok := g.index[strings.ToLower(to)]
	if !ok {
		return 0, 0, fmt.Errorf("routing: unknown site %q", to)
	}
	return src, dst, nil
}

// Paths are the least-cost paths from one site to every reachable site: the route
// table, from one search. Their TieBreak is left empty; Path explains a single decision.
func (g *Graph) Paths(from string) (map[string]Path, error) {
	src, ok := g.index[strings.ToLower(from)]
	if !ok {
		return nil, fmt.Errorf("routing: unknown site %q", from)
	}
	settled := g.searchFrom(src)
	// The least-cost paths from one site form a tree, each path its parent's plus one
	// link: a path shares its parent's backing arrays (cut with a full slice
	// expression, so no path can grow into another's), and each link's cost and
	// connector is looked up once for the whole table. A table of a 200-site
	// organisation was otherwise thousands of hop copies, and every Hub computes one.
	n := len(g.sites)
	children := make([][]int, n)
	height := make([]int, n) // sites on the longest path down from a site, itself included
	reached := 0
	for v, l := range settled {
		if l == nil {
			continue
		}
		reached++
		if l.prev != nil {
			children[l.prev.node] = append(children[l.prev.node], v)
		}
	}
	var measure func(v int) int
	measure = func(v int) int {
		h := 0
		for i, c := range children[v] {
			if ch := measure(c); ch > h {
				h = ch
				// The tallest child first: it continues in its parent's arrays.
				children[v][0], children[v][i] = children[v][i], children[v][0]
			}
		}
		height[v] = h + 1
		return height[v]
	}
	measure(src)
	out := make(map[string]Path, reached)
	type arrays struct {
		sites []string
		hubs  []bool
		costs []int
		conns []string
	}
	var walk func(v, parent int, a arrays, maxSize int)
	walk = func(v, parent int, a arrays, maxSize int) {
		a.sites, a.hubs = append(a.sites, g.sites[v]), append(a.hubs, g.hub[v])
		if parent >= 0 {
			c, size, conn := g.linkBetween(parent, v, nil)
			name := ""
			if conn >= 0 {
				name = g.conns[conn].Name
			}
			a.costs, a.conns = append(a.costs, c), append(a.conns, name)
			if size > 0 && (maxSize == 0 || size < maxSize) {
				maxSize = size
			}
		}
		k := len(a.sites)
		p := Path{Total: settled[v].cost, Sites: a.sites[:k:k], hub: a.hubs[:k:k], Costs: a.costs[: k-1 : k-1], MaxMessageSize: maxSize}
		if k > 1 {
			p.Connectors = a.conns[: k-1 : k-1]
		}
		out[g.sites[v]] = p
		for i, c := range children[v] {
			next := a
			if i > 0 {
				// A branch: the arrays past this site belong to the tallest child's
				// paths, so this one gets its own, with the prefix copied.
				size := k + height[c]
				next = arrays{
					sites: append(make([]string, 0, size), a.sites...), hubs: append(make([]bool, 0, size), a.hubs...),
					costs: append(make([]int, 0, size), a.costs...), conns: append(make([]string, 0, size), a.conns...),
				}
			}
			walk(c, v, next, maxSize)
		}
	}
	h := height[src]
	walk(src, -1, arrays{make([]string, 0, h), make([]bool, 0, h), make([]int, 0, h), make([]string, 0, h)}, 0)
	return out, nil
}

// compareFwd orders labels whose seq runs from the source: the same order as compare,
// names read from the far end. Appending the same link to two such labels keeps their
// order too (both gain the same nearest site), so one search from the source finds the
// path to every site exactly as a search from each destination would.
func (g *Graph) compareFwd(a, b *fwdLabel) int {
	if a.cost != b.cost {
		return a.cost - b.cost
	}
	if a.hops != b.hops {
		return a.hops - b.hops
	}
	// Equal hops: the chains are as long; the end sites themselves are not compared.
	for pa, pb := a.prev, b.prev; pa != pb; pa, pb = pa.prev, pb.prev {
		if pa.node != pb.node {
			return g.rank[pa.node] - g.rank[pb.node]
		}
	}
	return 0
}

// fwdLabel is a path from the source as a chain back to it: extending a path shares
// its prefix instead of copying it, which is what keeps one search of a large
// organisation cheap.
type fwdLabel struct {
	cost, hops, node int
	prev             *fwdLabel
}

// seqToSource is the path's sites from its end back to the source, as label.seq
// holds a path (destination first).
func (l *fwdLabel) seqToSource() []int {
	out := make([]int, 0, l.hops+1)
	for p := l; p != nil; p = p.prev {
		out = append(out, p.node)
	}
	return out
}

// searchFrom settles every site reachable from src.
func (g *Graph) searchFrom(src int) []*fwdLabel {
	settled := make([]*fwdLabel, len(g.sites))
	pq := fwdQueue{g: g, items: make([]*fwdLabel, 0, len(g.sites))}
	// Labels come from slabs: one allocation for many, and a full slab is left as it
	// is (labels point into it) while the next one fills.
	slab := make([]fwdLabel, 0, 2*len(g.sites))
	newLabel := func(l fwdLabel) *fwdLabel {
		if len(slab) == cap(slab) {
			slab = make([]fwdLabel, 0, cap(slab))
		}
		slab = append(slab, l)
		return &slab[len(slab)-1]
	}
	pq.push(newLabel(fwdLabel{node: src}))
	for len(pq.items) > 0 {
		l := pq.pop()
		if settled[l.node] != nil {
			continue
		}
		settled[l.node] = l
		for _, e := range g.adj[l.node] {
			if settled[e.to] != nil {
				continue
			}
			pq.push(newLabel(fwdLabel{cost: l.cost + e.cost, hops: l.hops + 1, node: e.to, prev: l}))
		}
	}
	return settled
}

// fwdQueue is a binary heap of labels under compareFwd.
type fwdQueue struct {
	g     *Graph
	items []*fwdLabel
}

func (q *fwdQueue) less(i, j int) bool { return q.g.compareFwd(q.items[i], q.items[j]) < 0 }

func (q *fwdQueue) push(l *fwdLabel) {
	q.items = append(q.items, l)
	for i := len(q.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *fwdQueue) pop() *fwdLabel {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items = q.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.less(l, m) {
			m = l
		}
		if r < last && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return top
}

// decider finds the next-best simple path (the second of Yen's k shortest paths under
// the same order) and names the first rule that ranks the best one above it.
func (g *Graph) decider(best label, src, dst int, down []bool) int {
	if src == dst {
		return 0
	}
	fromSrc := reversed(best.seq) // src ... dst
	var second *label
	for i := 0; i+1 < len(fromSrc); i++ {
		spur := fromSrc[i]
		banned := map[int]bool{}
		for _, n := range fromSrc[:i] {
			banned[n] = true
		}
		rest, ok := g.search(dst, spur, banned, [2]int{spur, fromSrc[i+1]}, down)
		if !ok {
			continue
		}
		// The candidate is the spur path (dst ... spur) followed by the root back to src.
		seq := append([]int(nil), rest.seq...)
		cost, hops := rest.cost, rest.hops
		for j := i - 1; j >= 0; j-- {
			c, _, _ := g.linkBetween(fromSrc[j], fromSrc[j+1], down)
			cost += c
			hops++
			seq = append(seq, fromSrc[j])
		}
		cand := label{cost: cost, hops: hops, seq: seq}
		if second == nil {
			second = &cand
		} else if c, _ := g.compare(cand, *second); c < 0 {
			second = &cand
		}
	}
	if second == nil {
		return 0
	}
	_, rule := g.compare(best, *second)
	return rule
}

func reversed(s []int) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func (g *Graph) pathOf(l label) Path { return g.pathOfAvoiding(l, nil) }

// pathOfAvoiding is pathOf for a path searched with connectors down: the link taken
// between two nodes is the cheapest one up.
func (g *Graph) pathOfAvoiding(l label, down []bool) Path {
	n := len(l.seq)
	p := Path{Total: l.cost, Sites: make([]string, 0, n), hub: make([]bool, 0, n), Costs: make([]int, 0, max(n-1, 0))}
	for i := n - 1; i >= 0; i-- {
		p.Sites = append(p.Sites, g.sites[l.seq[i]])
		p.hub = append(p.hub, g.hub[l.seq[i]])
	}
	for i := 0; i+1 < len(p.Sites); i++ {
		a, b := l.seq[len(l.seq)-1-i], l.seq[len(l.seq)-2-i]
		c, size, conn := g.linkBetween(a, b, down)
		p.Costs = append(p.Costs, c)
		name := ""
		if conn >= 0 {
			name = g.conns[conn].Name
		}
		p.Connectors = append(p.Connectors, name)
		if size > 0 && (p.MaxMessageSize == 0 || size < p.MaxMessageSize) {
			p.MaxMessageSize = size
		}
	}
	return p
}

// linkBetween is the cheapest link up from a to b (parallel links may exist; equal
// connectors are told apart by name).
func (g *Graph) linkBetween(a, b int, down []bool) (cost, size, conn int) {
	cost, conn = -1, -1
	for _, l := range g.adj[a] {
		if l.to != b || isDown(down, l) {
			continue
		}
		if cost < 0 || l.cost < cost || (l.cost == cost && l.conn >= 0 && conn >= 0 && g.conns[l.conn].Name < g.conns[conn].Name) {
			cost, size, conn = l.cost, l.maxSize, l.conn
		}
	}
	return cost, size, conn
}

// search runs Dijkstra from dst back over the links arriving at each node, skipping
// banned sites, the banned link (either direction) and connectors down, until stop
// is settled.
func (g *Graph) search(dst, stop int, banned map[int]bool, banEdge [2]int, down []bool) (label, bool) {
	settled := make(map[int]bool, len(g.sites))
	pq := &labelQueue{g: g}
	heap.Push(pq, item{node: dst, l: label{seq: []int{dst}}})
	for pq.Len() > 0 {
		it := heap.Pop(pq).(item)
		if settled[it.node] {
			continue
		}
		settled[it.node] = true
		if it.node == stop {
			return it.l, true
		}
		for _, e := range g.radj[it.node] {
			if settled[e.to] || banned[e.to] || isDown(down, e) ||
				(it.node == banEdge[0] && e.to == banEdge[1]) || (it.node == banEdge[1] && e.to == banEdge[0]) {
				continue
			}
			seq := make([]int, len(it.l.seq)+1)
			copy(seq, it.l.seq)
			seq[len(seq)-1] = e.to
			heap.Push(pq, item{node: e.to, l: label{cost: it.l.cost + e.cost, hops: it.l.hops + 1, seq: seq}})
		}
	}
	return label{}, false
}

type item struct {
	node int
	l    label
}

type labelQueue struct {
	g     *Graph
	items []item
}

func (q *labelQueue) Len() int { return len(q.items) }
func (q *labelQueue) Less(i, j int) bool {
	c, _ := q.g.compare(q.items[i].l, q.items[j].l)
	return c < 0
}
func (q *labelQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *labelQueue) Push(x any)    { q.items = append(q.items, x.(item)) }
func (q *labelQueue) Pop() any {
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it
}

// FanOut groups destination sites by the site the source relays to first, so one copy
// of a message goes to each first relay with every recipient behind it (ROUTE-009):
// recipients whose paths share a hub site travel together as far as that site.
func FanOut(paths map[string]Path) map[string][]string {
	out := map[string][]string{}
	for dst, p := range paths {
		if next := p.NextHop(); next != "" {
			out[next] = append(out[next], dst)
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}
