//go:build race

package transmittest

const raceEnabled = true
