using System.Globalization;
using K8s.Cri.V1;
using Shim.E2E.Tests.Cri.V1;

namespace Shim.E2E.Tests.Cri;

/// <summary>The pod both pod benches run, as kubelet would ask for it, and their shared knobs.</summary>
internal static class BenchPod
{
    // as kubelet fills them for a pod without shareProcessNamespace: the pod's network and IPC, a pid namespace per container
    private static NamespaceOption Namespaces() => new() { Network = NamespaceMode.Pod, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod };

    /// <summary>A pod with its own network namespace (CNI), under the daemon's cgroup parent.</summary>
    public static PodSandboxConfig Config(PrivateContainerd ctrd, string name, string k8sNamespace, string hostname) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Uid = Guid.NewGuid().ToString(), Namespace = k8sNamespace },
        Hostname = hostname,
        LogDirectory = Path.Combine(ctrd.Dir, "pods", name),
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = ctrd.CgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = Namespaces() },
        },
    };

    /// <summary>
    /// One idle container: PID 1 of its own pid namespace, so it ends on SIGTERM itself (a bare
    /// `sleep` as PID 1 would ignore it and every stop would wait out its timeout).
    /// </summary>
    public static ContainerConfig Sleeper() => new()
    {
        Metadata = new ContainerMetadata { Name = "app" },
        Image = new ImageSpec { Image = OciImage.Name },
        Command = { "/bin/sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait" },
        LogPath = "app.log",
        Linux = new LinuxContainerConfig
        {
            Resources = new LinuxContainerResources(),
            SecurityContext = new LinuxContainerSecurityContext { NamespaceOptions = Namespaces() },
        },
    };

    /// <summary>The handlers in turn, starting at <paramref name="by"/>: interleaving that does not favour one.</summary>
    public static IEnumerable<string> Rotate(string[] items, int by) => items.Skip(by % items.Length).Concat(items.Take(by % items.Length));

    /// <summary>
    /// The handlers a run covers: the comma list in <paramref name="variable"/>, each one of
    /// <paramref name="known"/>, or <paramref name="fallback"/> when it is unset.
    /// </summary>
    public static string[] Handlers(string variable, string[] known, string[] fallback)
    {
        string? chosen = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(chosen))
        {
            return fallback;
        }
        string[] names = chosen.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string[] unknown = names.Except(known).ToArray();
        return unknown.Length == 0 ? names : throw new ArgumentException($"{variable}: unknown handler(s) {string.Join(", ", unknown)}; known here: {string.Join(", ", known)}");
    }

    /// <summary>A positive integer from the environment, or <paramref name="fallback"/>.</summary>
    public static int Knob(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : fallback;
}
