module switchboard.dev/sdk

go 1.27
