[assembly: AssemblyFixture(typeof(Shim.E2E.Tests.RootfsCleanup))]

namespace Shim.E2E.Tests;

/// <summary>A busybox-static root filesystem, built once per test run and shared read-mostly by all containers.</summary>
internal static class Rootfs
{
    private static readonly Lazy<Task<string>> Built = new(() => Task.Run(Build));

    /// <summary>Path of the shared rootfs (null until built).</summary>
    public static string? PathIfBuilt => Built.IsValueCreated && Built.Value.IsCompletedSuccessfully ? Built.Value.Result : null;

    /// <summary>Builds the rootfs on first use and returns its path.</summary>
    public static Task<string> GetAsync() => Built.Value;

    private static async Task<string> Build()
    {
        var dir = $"/tmp/rcs-rootfs-{Environment.ProcessId}";
        if (Directory.Exists(dir)) { Directory.Delete(dir, recursive: true); }
        foreach (var d in new[] { "bin", "dev", "proc", "sys", "tmp", "etc", "root", "run", "var" })
        {
            Directory.CreateDirectory(Path.Combine(dir, d));
        }
        var bb = Path.Combine(dir, "bin", "busybox");
        File.Copy("/bin/busybox", bb);
        var list = (await Command.RunAsync(bb, ["--list"])).EnsureSuccess().Stdout;
        foreach (var applet in list.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (applet != "busybox") { File.CreateSymbolicLink(Path.Combine(dir, "bin", applet), "busybox"); }
        }
        await File.WriteAllTextAsync(Path.Combine(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        await File.WriteAllTextAsync(Path.Combine(dir, "etc", "group"), "root:x:0:\n");
        await File.WriteAllTextAsync(Path.Combine(dir, "etc", "hosts"), "");
        await File.WriteAllTextAsync(Path.Combine(dir, "etc", "resolv.conf"), "");
        File.SetUnixFileMode(Path.Combine(dir, "tmp"), (UnixFileMode)Convert.ToInt32("1777", 8));
        return dir;
    }
}

/// <summary>Removes the shared rootfs when the test run ends.</summary>
public sealed class RootfsCleanup : IDisposable
{
    public void Dispose()
    {
        foreach (var archive in OciImage.BuiltPaths) { File.Delete(archive); }
        if (Rootfs.PathIfBuilt is { } dir && Directory.Exists(dir))
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
