namespace Shim.Core.Cgroups;

/// <summary>rdma.current / rdma.max lines: "mlx4_0 hca_handle=2 hca_object=2000" ("max" → uint.MaxValue).</summary>
internal static class RdmaFile
{
    internal static IEnumerable<(string Device, uint HcaHandles, uint HcaObjects)> Parse(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            string[] parts = CgroupFiles.Fields(line);
            if (parts.Length != 3)
            {
                continue;
            }
            uint handles = 0;
            uint objects = 0;
            Apply(parts[1], ref handles, ref objects);
            Apply(parts[2], ref handles, ref objects);
            yield return (parts[0], handles, objects);
        }
    }

    private static void Apply(string pair, ref uint handles, ref uint objects)
    {
        int equals = pair.IndexOf('=', StringComparison.Ordinal);
        if (equals < 0)
        {
            return;
        }
        string value = pair[(equals + 1)..];
        uint parsed;
        if (value == "max")
        {
            parsed = uint.MaxValue;
        }
        else if (CgroupFiles.TryParseUint(value, out ulong wide) && wide <= uint.MaxValue)
        {
            parsed = (uint)wide;
        }
        else
        {
            return;
        }
        switch (pair[..equals])
        {
            case "hca_handle":
                handles = parsed;
                break;
            case "hca_object":
                objects = parsed;
                break;
        }
    }
}
