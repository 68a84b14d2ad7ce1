// Package architecture holds no code: its test checks that FlowForge's
// import graph runs one way (docs/architecture.md, "Where to find what"):
//
//	mains -> CLI, webhook server, controller -> domain packages -> contract
//
// and that the CLI links no database driver.
package architecture
