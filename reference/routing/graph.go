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
type Graph struct {
	sites  []string // canonical names, sorted
	rank   []int    // each site's place in lower-case name order, for the name rule
	index  map[string]int
	hub    []bool
	adj    [][]link
	server map[string]string // lower-case server name -> site
}

type link struct {
	to      int
	cost    int
	maxSize int
}

// NewGraph builds the graph of a validated scenario.
func NewGraph(s *scenario.Scenario) (*Graph, error) {
	g := &Graph{index: map[string]int{}, server: map[string]string{}}
	for _, st := range s.Org.Sites {
		g.sites = append(g.sites, st.Name)
	}
	sort.Strings(g.sites)
	g.hub = make([]bool, len(g.sites))
	g.adj = make([][]link, len(g.sites))
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
		g.adj[a] = append(g.adj[a], link{to: b, cost: cost, maxSize: l.MaxMessageSize})
		g.adj[b] = append(g.adj[b], link{to: a, cost: cost, maxSize: l.MaxMessageSize})
	}
	for _, sv := range s.Org.Servers {
		if sv.Site != "" {
			g.server[strings.ToLower(sv.Name)] = g.sites[g.index[strings.ToLower(sv.Site)]]
		}
	}
	return g, nil
}

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
		fmt.Fprintf(&b, " -(%d)-> %s", c, p.Sites[i+1])
	}
	fmt.Fprintf(&b, "; cost %d, %d hop", p.Total, p.Hops())
	if p.Hops() != 1 {
		b.WriteString("s")
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
func (g *Graph) Path(from, to string) (Path, error) {
	src, dst, err := g.ends(from, to)
	if err != nil {
		return Path{}, err
	}
	l, ok := g.search(dst, src, nil, [2]int{-1, -1})
	if !ok {
		return Path{}, fmt.Errorf("routing: %s to %s: %w", g.sites[src], g.sites[dst], ErrNoPath)
	}
	p := g.pathOf(l)
	p.TieBreak = rules[g.decider(l, src, dst)]
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
	out := make(map[string]Path, len(g.sites))
	for node, l := range g.searchFrom(src) {
		if l != nil {
			out[g.sites[node]] = g.pathOf(label{cost: l.cost, hops: l.hops, seq: l.seqToSource()})
		}
	}
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
	pq := fwdQueue{g: g}
	pq.push(&fwdLabel{node: src})
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
			pq.push(&fwdLabel{cost: l.cost + e.cost, hops: l.hops + 1, node: e.to, prev: l})
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
func (g *Graph) decider(best label, src, dst int) int {
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
		rest, ok := g.search(dst, spur, banned, [2]int{spur, fromSrc[i+1]})
		if !ok {
			continue
		}
		// The candidate is the spur path (dst ... spur) followed by the root back to src.
		seq := append([]int(nil), rest.seq...)
		cost, hops := rest.cost, rest.hops
		for j := i - 1; j >= 0; j-- {
			c, _ := g.linkBetween(fromSrc[j], fromSrc[j+1])
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

func (g *Graph) pathOf(l label) Path {
	n := len(l.seq)
	p := Path{Total: l.cost, Sites: make([]string, 0, n), hub: make([]bool, 0, n), Costs: make([]int, 0, max(n-1, 0))}
	for i := n - 1; i >= 0; i-- {
		p.Sites = append(p.Sites, g.sites[l.seq[i]])
		p.hub = append(p.hub, g.hub[l.seq[i]])
	}
	for i := 0; i+1 < len(p.Sites); i++ {
		a, b := l.seq[len(l.seq)-1-i], l.seq[len(l.seq)-2-i]
		c, size := g.linkBetween(a, b)
		p.Costs = append(p.Costs, c)
		if size > 0 && (p.MaxMessageSize == 0 || size < p.MaxMessageSize) {
			p.MaxMessageSize = size
		}
	}
	return p
}

// linkBetween is the cheapest link joining a and b (parallel links may exist).
func (g *Graph) linkBetween(a, b int) (cost, size int) {
	cost = -1
	for _, l := range g.adj[a] {
		if l.to == b && (cost < 0 || l.cost < cost) {
			cost, size = l.cost, l.maxSize
		}
	}
	return cost, size
}

// search runs Dijkstra from dst over the undirected links, skipping banned sites and
// the banned link (either direction), until stop is settled.
func (g *Graph) search(dst, stop int, banned map[int]bool, banEdge [2]int) (label, bool) {
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
		for _, e := range g.adj[it.node] {
			if settled[e.to] || banned[e.to] ||
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
