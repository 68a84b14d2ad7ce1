// Package store checks the controller's history store on the local
// cluster: retention prunes the records (and job-id records) of Jobs that
// are gone and keeps those of Jobs still in the cluster, and the
// controller upgrades a store written by the previous schema at start.
// Its own package (and cluster, and process): the tests of package
// restart count metrics from the start of their process.
package store
