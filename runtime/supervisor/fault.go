package supervisor

// faultAfter, when set, is called after every step of a container start
// with the container's name and the step's name. Only a peapod-supervisor
// built with the faultinject tag sets it (fault_inject.go), so the tests
// can SIGKILL the supervisor after each step of a start in turn; in every
// other build it stays nil. A step added to startInstance through
// startStep is covered by the fault test at once (it enumerates the steps
// the fault build traces).
var faultAfter func(container, step string)

// firstStartStep is the first step of every start (a fault build counts
// starts by it).
const firstStartStep = "restart count"

// startStep records that step of c's start just finished (see faultAfter).
func startStep(c *container, step string) {
	if faultAfter != nil {
		faultAfter(c.spec.Name, step)
	}
}
