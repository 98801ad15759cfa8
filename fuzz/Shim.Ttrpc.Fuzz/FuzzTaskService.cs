using Google.Protobuf;
using Shim.Core.Events;
using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Runc;

namespace Shim.Ttrpc.Fuzz;

/// <summary>
/// The shim's real <see cref="TaskService"/>, registered under both task API names exactly as the
/// shim does, with no container and a runc that refuses every call: whatever a fuzzed request asks,
/// nothing outside this process is touched.
/// </summary>
internal static class FuzzTaskService
{
    /// <summary>
    /// The one method never invoked: Create mounts and writes into the bundle the request names, so a
    /// fuzzed bundle such as "/" or "." would act on the real filesystem. Its payload is still parsed.
    /// </summary>
    public const string NeverInvoked = "Create";

    /// <summary>A registry holding a fresh TaskService's v2 and v3 methods.</summary>
    public static TtrpcServiceRegistry NewRegistry()
    {
        var service = new TaskService(
            new ShimSettings { Namespace = "fuzz", Id = "fuzz" }, new DiscardPublisher(), new RefusingRunner(), new ExitRouter(),
            new Shim.Core.Stdio.StdioContext(Shim.Os.Io.IoLoop.Shared, Shim.Os.Reaper.Instance, TimeProvider.System));
        var registry = new TtrpcServiceRegistry();
        service.Register(registry);
        return registry;
    }

    private sealed class DiscardPublisher : IEventPublisher
    {
        public void Publish(IMessage evt)
        {
        }

        public Task FlushAsync(TimeSpan timeout) => Task.CompletedTask;
    }

    private sealed class RefusingRunner : IRuncRunner
    {
        public Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct) =>
            Task.FromResult(new RuncResult(1, [], "fuzz: runc is not available"));
    }
}
