module switchboard.dev/tests/noreg-go

go 1.27

require switchboard.dev/sdk v0.0.0

replace switchboard.dev/sdk => ../../../plugin-sdk/go
