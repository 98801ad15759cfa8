using Shim.Os;

namespace Shim.Core.Processes;

/// <summary>A tracked process that wants its exit.</summary>
internal interface IExitTarget
{
    /// <summary>Called once with the reaped exit (from the exit loop, or replayed after a start).</summary>
    void OnExit(ChildExit reaped);
}
