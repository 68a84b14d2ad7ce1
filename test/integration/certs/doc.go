// Package certs checks the webhook's self-managed serving certificate on
// the local cluster: two replicas behind the webhook Service in rotate
// mode (certs.Rotator, certs.Keeper) with lifetimes of seconds, while a
// steady stream of admissions goes through the API server. The CA and the
// serving certificate rotate on their own, by a forced rotation and after
// the leading replica stops, with zero failed admissions; the caBundles
// follow the Secret, and every replica serves the Secret's certificate.
package certs
