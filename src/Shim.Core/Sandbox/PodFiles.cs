using System.Text;
using K8s.Cri.V1;
using Shim.Os.Mounting;

namespace Shim.Core.Sandbox;

/// <summary>
/// The files containerd's CRI mounts into each container of a pod, which the pause container's
/// controller writes and a shim sandboxer must write instead (CRI only stats them and silently
/// skips a missing one: no hostname, no cluster DNS, no shared /dev/shm). Paths as CRI computes
/// them (internal/cri/server/helpers.go): &lt;root&gt;/io.containerd.grpc.v1.cri/sandboxes/&lt;id&gt;/{hostname,hosts,resolv.conf}
/// and &lt;state&gt;/io.containerd.grpc.v1.cri/sandboxes/&lt;id&gt;/shm, where root and state are containerd's.
/// </summary>
public sealed class PodFiles
{
    private const string CriPlugin = "io.containerd.grpc.v1.cri";
    // CRI's defaultShmSize (internal/cri/server/podsandbox/sandbox_run_linux.go)
    private const long ShmSize = 64L * 1024 * 1024;

    private PodFiles(string rootDir, string stateDir)
    {
        RootDir = rootDir;
        StateDir = stateDir;
    }

    /// <summary>The pod's directory of persistent files (hostname, hosts, resolv.conf).</summary>
    public string RootDir { get; }

    /// <summary>The pod's directory of volatile files (the shm mount).</summary>
    public string StateDir { get; }

    /// <summary>The pod's /dev/shm as CRI mounts it into each container.</summary>
    public string Shm => Path.Combine(StateDir, "shm");

    /// <summary>
    /// Where the files of pod <paramref name="id"/> go, from its bundle: containerd's sandbox controller
    /// makes it &lt;state&gt;/io.containerd.sandbox.controller.v1.shim/&lt;ns&gt;/&lt;id&gt; with a `work` link to the
    /// same place under &lt;root&gt; (core/runtime/v2/bundle.go NewBundle), so both are three levels up.
    /// </summary>
    public static PodFiles For(string bundle, string id)
    {
        string state = Up(bundle, 3);
        string work = Path.Combine(bundle, "work");
        string root = new FileInfo(work).LinkTarget is { } target
            ? Up(Path.GetFullPath(target, bundle), 3)
            : throw new IOException($"bundle {bundle} has no work link to containerd's root: not a sandbox bundle of containerd 2.x");
        return new PodFiles(Path.Combine(root, CriPlugin, "sandboxes", id), Path.Combine(state, CriPlugin, "sandboxes", id));
    }

    /// <summary>Writes hostname, hosts and resolv.conf, and mounts the shm unless the pod uses the node's IPC namespace.</summary>
    public void Write(PodSandboxConfig config, string nodeHostname)
    {
        ArgumentNullException.ThrowIfNull(config);
        Directory.CreateDirectory(RootDir);
        string hostname = config.Hostname.Length > 0 ? config.Hostname : nodeHostname;
        File.WriteAllText(Path.Combine(RootDir, "hostname"), hostname + "\n");
        File.Copy("/etc/hosts", Path.Combine(RootDir, "hosts"), overwrite: true);
        string resolv = Path.Combine(RootDir, "resolv.conf");
        if (config.DnsConfig is { } dns)
        {
            File.WriteAllText(resolv, ResolvConf(dns));
        }
        else
        {
            // no DNS config means the node's, as CRI does
            File.Copy("/etc/resolv.conf", resolv, overwrite: true);
        }
        if (config.Linux?.SecurityContext?.NamespaceOptions?.Ipc != NamespaceMode.Node)
        {
            Directory.CreateDirectory(Shm, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (!Mounts.IsMountPoint(Shm))
            {
                Mounts.MountTmpfs(Shm, $"mode=1777,size={ShmSize}");
            }
        }
    }

    /// <summary>Unmounts the shm and removes both directories; what is already gone is no error.</summary>
    public void Remove()
    {
        Mounts.UnmountRecursive(Shm);
        if (Directory.Exists(StateDir))
        {
            Directory.Delete(StateDir, recursive: true);
        }
        if (Directory.Exists(RootDir))
        {
            Directory.Delete(RootDir, recursive: true);
        }
    }

    /// <summary>resolv.conf from the pod's DNS config, as CRI's parseDNSOptions writes it.</summary>
    public static string ResolvConf(DNSConfig dns)
    {
        ArgumentNullException.ThrowIfNull(dns);
        var sb = new StringBuilder();
        if (dns.Searches.Count > 0)
        {
            sb.Append("search ").AppendJoin(' ', dns.Searches).Append('\n');
        }
        foreach (string server in dns.Servers)
        {
            sb.Append("nameserver ").Append(server).Append('\n');
        }
        if (dns.Options.Count > 0)
        {
            sb.Append("options ").AppendJoin(' ', dns.Options).Append('\n');
        }
        return sb.ToString();
    }

    private static string Up(string path, int levels)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        for (int i = 0; i < levels; i++)
        {
            full = Path.GetDirectoryName(full) ?? throw new IOException($"{path} is not {levels} levels deep");
        }
        return full;
    }
}
