// Package runtime is the runtime support of the generated bindings, vendored from the
// wit-bindgen-go crate 0.63.0 (Apache-2.0 WITH LLVM-exception, see ../LICENSE) with one
// change: cabi_realloc is a GC-free bump arena instead of Go allocations.
//
// Why: the host calls cabi_realloc while it lowers an event's arguments or an import's
// results into this instance, and an allocation there may run Go's garbage collector, which
// reads the clock, an import; calling an import from cabi_realloc traps ("cannot leave
// component instance"), after some thousands of events (wasmtime issue 14318). The arena is
// static memory, so allocating never reaches the Go runtime. The SDK copies everything it
// hands to plugin code out of it at once and gives the space back: an event's arguments as
// soon as the dispatcher copied them, an import's results as soon as the wrapper copied them
// (Hold and Release around each import), so one call's results, not one event's, must fit.
package runtime

import (
	"runtime"
	"unsafe"
)

type Handle struct {
	value int32
}

func (h *Handle) Use() int32 {
	if h.value == 0 {
		panic("nil handle")
	}
	return h.value
}

func (h *Handle) Take() int32 {
	if h.value == 0 {
		panic("nil handle")
	}
	value := h.value
	h.value = 0
	return value
}

func (h *Handle) Set(value int32) {
	if value == 0 {
		panic("nil handle")
	}
	if h.value != 0 {
		panic("handle already set")
	}
	h.value = value
}

func (h *Handle) TakeOrNil() int32 {
	value := h.value
	h.value = 0
	return value
}

func MakeHandle(value int32) *Handle {
	if value == 0 {
		panic("nil handle")
	}
	return &Handle{value}
}

// Allocate is used by generated code running as ordinary Go code (return areas, lowered
// lists), where the garbage collector may run: plain pinned Go memory.
func Allocate(pinner *runtime.Pinner, size, align uintptr) unsafe.Pointer {
	if size == 0 {
		return nil
	}
	var pointer unsafe.Pointer
	switch align {
	case 1:
		pointer = unsafe.Pointer(unsafe.SliceData(make([]uint8, size)))
	case 2:
		pointer = unsafe.Pointer(unsafe.SliceData(make([]uint16, (size+1)/2)))
	case 4:
		pointer = unsafe.Pointer(unsafe.SliceData(make([]uint32, (size+3)/4)))
	default:
		pointer = unsafe.Pointer(unsafe.SliceData(make([]uint64, (size+7)/8)))
	}
	pinner.Pin(pointer)
	return pointer
}

var pinner = runtime.Pinner{}

// Unpin is called by generated exports once arguments are lifted.
func Unpin() {
	pinner.Unpin()
}

// ArenaSize is the static memory for one event's arguments, or one import's results.
const ArenaSize = 4 << 20

var (
	arena    [ArenaSize]byte
	arenaTop uintptr
	// Requests that did not fit: Go memory, kept alive until released. Allocating it may
	// run the garbage collector inside cabi_realloc, the very hazard the arena avoids, so it
	// only happens for one event's arguments, or one import's results, above ArenaSize.
	overflow [][]uint64
)

func align(n, a uintptr) uintptr {
	return (n + a - 1) &^ (a - 1)
}

//go:wasmexport cabi_realloc
func cabiRealloc(oldPointer unsafe.Pointer, oldSize, alignment, newSize uintptr) unsafe.Pointer {
	if newSize == 0 {
		return unsafe.Pointer(uintptr(alignment))
	}
	base := uintptr(unsafe.Pointer(&arena[0]))
	start := align(base+arenaTop, alignment) - base
	var pointer unsafe.Pointer
	if start+newSize <= ArenaSize {
		arenaTop = start + newSize
		pointer = unsafe.Pointer(&arena[start])
	} else {
		block := make([]uint64, (newSize+7)/8)
		overflow = append(overflow, block)
		pointer = unsafe.Pointer(unsafe.SliceData(block))
	}
	if oldPointer != nil && oldSize > 0 {
		copy(unsafe.Slice((*byte)(pointer), newSize), unsafe.Slice((*byte)(oldPointer), min(oldSize, newSize)))
	}
	return pointer
}

// Mark is a position in the arena: what Hold returns and Release goes back to.
type Mark struct {
	top      uintptr
	overflow int
}

// Hold marks the arena's current top, before an import whose results the host will lower
// into it.
func Hold() Mark { return Mark{arenaTop, len(overflow)} }

// Release frees everything cabi_realloc handed out since m. Call it only when nothing lifted
// from that part of the arena is referenced any more: once an import's results are copied
// out, or once the dispatcher has copied an event's arguments.
func Release(m Mark) {
	arenaTop = m.top
	clear(overflow[m.overflow:])
	overflow = overflow[:m.overflow]
}

// Reset frees the whole arena: at the end of an export, and once its arguments are copied.
func Reset() { Release(Mark{}) }

// Used is how many bytes of the arena are handed out now (the overflow not counted).
func Used() uintptr { return arenaTop }

// The WASI adapter allocates its state through cabi_realloc_adapter, once, possibly before
// the Go runtime is initialised: a static block of its own.
var (
	adapterArena [256 << 10]byte
	adapterTop   uintptr
)

//go:wasmexport cabi_realloc_adapter
func cabiReallocAdapter(oldPointer unsafe.Pointer, oldSize, alignment, newSize uintptr) unsafe.Pointer {
	if oldPointer != nil || oldSize != 0 {
		panic("cabi_realloc_adapter: reallocation is not supported")
	}
	base := uintptr(unsafe.Pointer(&adapterArena[0]))
	start := align(base+adapterTop, alignment) - base
	if start+newSize > uintptr(len(adapterArena)) {
		panic("cabi_realloc_adapter: out of static memory")
	}
	adapterTop = start + newSize
	return unsafe.Pointer(&adapterArena[start])
}
