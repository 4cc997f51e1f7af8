"""GPU tool outputs written for the tests in the shapes the real tools print (the real ones
are in captures/, these are not copies of them). The longer ones are in data/."""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

UUID0 = "GPU-11111111-2222-3333-4444-555555555555"
UUID1 = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

CSV_HEADER = (
    "uuid, pci.bus_id, index, name, ecc.errors.uncorrected.volatile.total, "
    "remapped_rows.pending, remapped_rows.failure, retired_pages.pending, "
    "clocks_event_reasons.hw_thermal_slowdown, clocks_event_reasons.sw_thermal_slowdown, "
    "gpu_recovery_action, power.draw [W]"
)
CSV_HEALTHY = (
    CSV_HEADER + "\n"
    f"{UUID0}, 00000000:3B:00.0, 0, NVIDIA H100 80GB HBM3, 0, No, No, [N/A], Not Active, "
    "Not Active, None, 69.85 W\n"
    f"{UUID1}, 00000000:9B:00.0, 1, NVIDIA H100 80GB HBM3, 0, No, No, [N/A], Not Active, "
    "Not Active, None, 70.01 W\n"
)


def q_block(
    bus: str = "00000000:3B:00.0",
    uuid: str = UUID0,
    *,
    reset: str = "    GPU Recovery Action                   : None\n",
    dram_unc: str = "0",
    remap: str = "Pending                           : No",
    thermal: str = "Not Active",
    addressing: str = "None",
) -> str:
    """One GPU's block of `nvidia-smi -q`, 535/570-style."""
    return f"""GPU {bus}
    Product Name                          : NVIDIA H100 80GB HBM3
    Addressing Mode                       : {addressing}
    MIG Mode
        Current                           : Disabled
        Pending                           : Disabled
    GPU UUID                              : {uuid}
{reset}    PCI
        Bus                               : 0x3B
        Bus Id                            : {bus}
        Replays Since Reset               : 97
    Performance State                     : P0
    Clocks Event Reasons
        Idle                              : Active
        HW Slowdown                       : Not Active
            HW Thermal Slowdown           : {thermal}
            HW Power Brake Slowdown       : Not Active
        SW Thermal Slowdown               : Not Active
    Clocks Event Reasons Counters
        SW Thermal Slowdown               : 1234 us
    ECC Errors
        Volatile
            SRAM Correctable              : 3
            SRAM Uncorrectable Parity     : 0
            SRAM Uncorrectable SEC-DED    : 0
            DRAM Correctable              : 12
            DRAM Uncorrectable            : {dram_unc}
        Aggregate
            SRAM Uncorrectable Parity     : 7
            DRAM Uncorrectable            : 9
    Retired Pages
        Single Bit ECC                    : N/A
        Double Bit ECC                    : N/A
        Pending Page Blacklist            : N/A
    Remapped Rows
        Correctable Error                 : 0
        Uncorrectable Error               : 0
        {remap}
        Remapping Failure Occurred        : No
    Processes                             : None

"""


Q_BANNER = """
==============NVSMI LOG==============

Timestamp                                 : Mon Jan 20 10:18:26 2025
Driver Version                            : 570.86.15
CUDA Version                              : 12.8

Attached GPUs                             : 2
"""
Q_HEALTHY = Q_BANNER + q_block() + q_block("00000000:9B:00.0", UUID1)
RESET_535 = """    GPU Reset Status
        Reset Required                    : {required}
        Drain and Reset Recommended       : {drain}
"""

XML_V11 = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v11.dtd">
<nvidia_smi_log>
  <driver_version>515.105.01</driver_version>
  <attached_gpus>1</attached_gpus>
  <gpu id="00000000:00:1E.0">
    <product_name>NVIDIA A10G</product_name>
    <uuid>GPU-9a9a6c50-0000-0000-0000-b82c3b127e94</uuid>
    <pci>
      <pci_bus_id>00000000:00:1E.0</pci_bus_id>
      <replay_counter>3</replay_counter>
    </pci>
    <clocks_throttle_reasons>
      <clocks_throttle_reason_gpu_idle>Active</clocks_throttle_reason_gpu_idle>
      <clocks_throttle_reason_hw_thermal_slowdown>{thermal}</clocks_throttle_reason_hw_thermal_slowdown>
      <clocks_throttle_reason_sw_thermal_slowdown>Not Active
      </clocks_throttle_reason_sw_thermal_slowdown>
    </clocks_throttle_reasons>
    <ecc_errors>
      <volatile>
        <sram_correctable>0</sram_correctable>
        <sram_uncorrectable>{sram}</sram_uncorrectable>
        <dram_correctable>0</dram_correctable>
        <dram_uncorrectable>0</dram_uncorrectable>
      </volatile>
      <aggregate>
        <sram_uncorrectable>5</sram_uncorrectable>
      </aggregate>
    </ecc_errors>
    <retired_pages>
      <pending_blacklist>{pending}</pending_blacklist>
      <pending_retirement>N/A</pending_retirement>
    </retired_pages>
    <remapped_rows>
      <remapped_row_corr>0</remapped_row_corr>
      <remapped_row_unc>0</remapped_row_unc>
      <remapped_row_pending>No</remapped_row_pending>
      <remapped_row_failure>{failure}</remapped_row_failure>
    </remapped_rows>
    <power_readings>
      <power_draw>{power}</power_draw>
    </power_readings>
  </gpu>
</nvidia_smi_log>
"""

XML_V12_MIG = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
  <attached_gpus>4</attached_gpus>
  <gpu id="00000000:01:00.0">
    <product_name>NVIDIA A100-SXM4-80GB</product_name>
    <mig_mode><current_mig>Enabled</current_mig></mig_mode>
    <mig_devices>
      <mig_device>
        <ecc_error_count>
          <volatile_count><sram_uncorrectable>4</sram_uncorrectable></volatile_count>
        </ecc_error_count>
      </mig_device>
    </mig_devices>
    <uuid>GPU-51353600-0000-0000-0000-1e69664bb298</uuid>
    <gpu_reset_status>
      <reset_required>{reset}</reset_required>
      <drain_and_reset_recommended>{drain}</drain_and_reset_recommended>
    </gpu_reset_status>
    <pci><pci_bus_id>00000000:01:00.0</pci_bus_id><replay_counter>0</replay_counter></pci>
    <clocks_event_reasons>
      <clocks_event_reason_hw_thermal_slowdown>Not Active</clocks_event_reason_hw_thermal_slowdown>
      <clocks_event_reason_sw_thermal_slowdown>Not Active</clocks_event_reason_sw_thermal_slowdown>
    </clocks_event_reasons>
    <ecc_errors>
      <volatile>
        <sram_uncorrectable>0</sram_uncorrectable>
        <dram_uncorrectable>0</dram_uncorrectable>
      </volatile>
    </ecc_errors>
    <remapped_rows>N/A</remapped_rows>
    <gpu_power_readings><power_draw>67.03 W</power_draw></gpu_power_readings>
  </gpu>
</nvidia_smi_log>
"""

XML_V13 = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v13.dtd">
<nvidia_smi_log>
\t<attached_gpus>1</attached_gpus>
\t<gpu id="00000000:61:00.0">
\t\t<product_name>NVIDIA RTX PRO 6000</product_name>
\t\t<uuid>GPU-12345678-aaaa-bbbb-cccc-0123456789ab</uuid>
\t\t<gpu_recovery_action>{action}</gpu_recovery_action>
\t\t<pci><pci_bus_id>00000000:61:00.0</pci_bus_id><replay_counter>0</replay_counter></pci>
\t\t<ecc_errors>
\t\t\t<volatile>
\t\t\t\t<sram_correctable>1</sram_correctable>
\t\t\t\t<sram_uncorrectable_parity>{parity}</sram_uncorrectable_parity>
\t\t\t\t<sram_uncorrectable_secded>{secded}</sram_uncorrectable_secded>
\t\t\t\t<dram_correctable>0</dram_correctable>
\t\t\t\t<dram_uncorrectable>{dram}</dram_uncorrectable>
\t\t\t</volatile>
\t\t</ecc_errors>
\t\t<remapped_rows>
\t\t\t<remapped_row_pending>No</remapped_row_pending>
\t\t\t<remapped_row_failure>No</remapped_row_failure>
\t\t</remapped_rows>
\t\t<gpu_power_readings><average_power_draw>3.97 W</average_power_draw></gpu_power_readings>
\t</gpu>
</nvidia_smi_log>
"""

LABELS = (
    'gpu="{index}",UUID="{uuid}",pci_bus_id="{bus}",device="nvidia{index}",'
    'modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",DCGM_FI_DRIVER_VERSION="570.86.15"'
    "{pod}"
)


def exporter_series(name: str, value: str, index: int = 0, extra: str = "", **kw: str) -> str:
    labels = LABELS.format(
        index=index,
        uuid=kw.get("uuid", UUID0 if index == 0 else UUID1),
        bus=kw.get("bus", "00000000:3B:00.0" if index == 0 else "00000000:9B:00.0"),
        pod=kw.get("pod", ""),
    )
    return f"{name}{{{labels}{extra}}} {value}\n"


POD0 = ',container="train",namespace="ml",pod="trainer-0",pod_uid=""'
POD1 = ',container="train",namespace="other",pod="trainer-0",pod_uid=""'
EXPORTER = (
    "# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.\n"
    "# TYPE DCGM_FI_DEV_XID_ERRORS gauge\n"
    + exporter_series(
        "DCGM_FI_DEV_XID_ERRORS", "0", 0, ',err_code="0",err_msg="No Error"', pod=POD0
    )
    + exporter_series("DCGM_FI_DEV_XID_ERRORS", "79", 1, ',err_code="79"', pod=POD1)
    + "# TYPE DCGM_FI_DEV_PCIE_REPLAY_COUNTER counter\n"
    + exporter_series("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "12", 0, pod=POD0)
    + exporter_series("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "0", 1, pod=POD1)
    + "# TYPE DCGM_FI_DEV_MEMORY_TEMP gauge\n"
    + exporter_series("DCGM_FI_DEV_MEMORY_TEMP", "9223372036854775794", 0, pod=POD0)
    + "# TYPE DCGM_FI_DEV_ECC_DBE_VOL_TOTAL counter\n"
    + exporter_series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "9223372036854775794", 0, pod=POD0)
    + exporter_series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "2", 1, pod=POD1)
    + "# TYPE DCGM_FI_DEV_ROW_REMAP_FAILURE gauge\n"
    + exporter_series("DCGM_FI_DEV_ROW_REMAP_FAILURE", "0", 0, pod=POD0)
    + exporter_series("DCGM_FI_DEV_ROW_REMAP_FAILURE", "1", 1, pod=POD1)
    + "# TYPE DCGM_FI_DEV_ROW_REMAP_PENDING gauge\n"
    + exporter_series("DCGM_FI_DEV_ROW_REMAP_PENDING", "2147483632", 0, pod=POD0)
    + "# TYPE DCGM_FI_DEV_GPU_RECOVERY_ACTION gauge\n"
    + exporter_series("DCGM_FI_DEV_GPU_RECOVERY_ACTION", "0", 0, pod=POD0)
    + exporter_series("DCGM_FI_DEV_GPU_RECOVERY_ACTION", "2", 1, pod=POD1)
    + "# TYPE DCGM_EXP_GPU_HEALTH_STATUS gauge\n"
    + exporter_series(
        "DCGM_EXP_GPU_HEALTH_STATUS",
        "10",
        0,
        ',health_watch="PCIE",health_error_code="1"',
        pod=POD0,
    )
    + exporter_series(
        "DCGM_EXP_GPU_HEALTH_STATUS", "0", 0, ',health_watch="MEM",health_error_code=""', pod=POD0
    )
)

DCGMI_NEW = (DATA / "dcgmi-health-current.txt").read_text()
DCGMI_OLD = (DATA / "dcgmi-health-older.txt").read_text()
DCGMI_HEALTHY = (DATA / "dcgmi-health-healthy.txt").read_text()
DCGMI_JSON = (DATA / "dcgmi-health.json").read_text()
DCGMI_DIAG_FAIL = (DATA / "dcgmi-diag-fail.txt").read_text()

TABLE = (DATA / "nvsmi-table-err.txt").read_text()
