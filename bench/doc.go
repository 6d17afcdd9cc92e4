// Package bench holds trawl's end-to-end benchmarks: the node running in
// this process, fed over loopback by clients in this process, measured as
// events per second from the first byte sent until every event is durable
// in the spool (the ledger's delivered counter). `make bench` runs them
// beside the package benchmarks and prints one table.
package bench
