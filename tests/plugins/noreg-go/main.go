// A plugin that forgets sb.Register: the SDK must refuse it at start, saying why.
package main

import sb "switchboard.dev/sdk"

// App would be the handler, had init registered it.
type App struct{ sb.BaseHandler }

var _ sb.Handler = App{}

func main() {}
