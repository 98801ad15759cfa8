using System.Globalization;
using Shim.Os;
using Shim.Os.Namespaces;

namespace Shim.Core.Sandbox;

/// <summary>What the delete action does for a pod bundle whose shim is gone: kill the holder it left and remove the pod's files.</summary>
public static class OrphanedPod
{
    /// <summary>True when <paramref name="bundle"/> is a pod's (the sandbox controller's: no config.json, a work link).</summary>
    public static bool IsPodBundle(string bundle) =>
        !File.Exists(Path.Combine(bundle, BundleFiles.Config)) && File.Exists(Path.Combine(bundle, BundleFiles.HolderPid));

    /// <summary>Kills the recorded holder if it is still one (its pid may have been reused) and removes the pod's files.</summary>
    public static void CleanUp(string bundle, string id)
    {
        string pidFile = Path.Combine(bundle, BundleFiles.HolderPid);
        if (int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0 && IsHolder(pid))
        {
            Signals.Kill(pid, Signals.SIGKILL);
        }
        PodFiles.For(bundle, id).Remove();
    }

    private static bool IsHolder(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0').Contains(NamespaceHolder.HoldCommand);
        }
        catch (IOException)
        {
            return false;   // gone
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
