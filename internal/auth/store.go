package auth

import "github.com/postern/postern/internal/authrec"

// The state the gateway keeps in the database is declared in authrec, so
// that the store implements it without importing the gateway; these names
// are the gateway's own for it.
type (
	Store          = authrec.Store
	AuthState      = authrec.AuthState
	FailureResult  = authrec.FailureResult
	LoginRecord    = authrec.LoginRecord
	PairTag        = authrec.PairTag
	ThrottleConfig = authrec.ThrottleConfig
	PenaltyStore   = authrec.PenaltyStore
	PenaltyStart   = authrec.PenaltyStart
)

// Results of login records.
const (
	ResultOK    = authrec.ResultOK
	ResultFail  = authrec.ResultFail
	ResultError = authrec.ResultError
)
