// Package framework is what every suite builds on: the Target a run is pointed at, a
// World per spec (its own topology on its own addresses, torn down by the spec), a raw
// SMTP session that keeps the exchange for failure messages, and Clause labels taken
// from the catalog so a spec names its clause once.
package framework
