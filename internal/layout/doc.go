// Package layout holds the test that keeps the package imports of this
// module to the arrows the README's Layout section draws.
package layout
