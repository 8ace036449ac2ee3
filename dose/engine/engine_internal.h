// Host-side helpers shared by the engine's translation units (not installed).
#pragma once

#include <vector>

#include "cccs_impl.h"
#include "isoline/dose/engine.h"

namespace isoline::dose::detail {

/// The calculation box (voxels with density >= threshold, plus a one-voxel rim) and its data.
struct PreparedBox {
  impl::Box box{};
  impl::GridGeom geom{};
  std::vector<float> density;      ///< box layout
  std::vector<std::uint16_t> q;    ///< quantised density
};

PreparedBox prepare_box(const Grid& grid, const std::vector<float>& density, double threshold);
/// A sub-box of a prepared box (indices relative to the parent box).
PreparedBox sub_box(const PreparedBox& parent, const impl::Box& rel);

impl::GridGeom grid_geom(const Grid& grid);
impl::BeamFrame beam_frame(const Beam& beam, const Machine& m);
impl::Spectrum spectrum(const Machine& m);

struct DirectionSet {
  std::vector<impl::Direction> dirs;
  std::vector<float> lut;  ///< kLutPerDirection per direction
  double kernel_total = 0; ///< sum over directions of A/a + B/b
};
/// Cone directions around the beam axis (frame.ez points to the source) with merged kernels.
DirectionSet make_directions(const impl::BeamFrame& f, const Machine& m, const CalcOptions& o,
                             const impl::GridGeom& g);

/// Fluence raster on the isocentre plane for a beam (jaws x fluence map, source blur, horns).
struct FluenceRaster {
  std::vector<float> data;
  impl::FluencePlane plane{};
};
FluenceRaster make_fluence(const Beam& beam, const Machine& m);
float horn(const Machine& m, double r_mm);

/// Source position in box index coordinates.
void source_index(const Grid& grid, const impl::Box& box, const impl::BeamFrame& f, float out[3]);

double equivalent_square_cm(const Beam& b);

// CPU kernels (cccs_cpu.cpp).
void terma_cpu(const PreparedBox& pb, const impl::BeamFrame& f, const impl::Spectrum& sp,
               const impl::FluencePlane& plane, const float src_idx[3], float density_threshold,
               std::vector<float>& ta, std::vector<float>& tb);
void cccs_cpu(const PreparedBox& pb, const DirectionSet& ds, const std::vector<float>& ta,
              const std::vector<float>& tb, std::vector<float>& dose);

// CUDA kernels (cccs_cuda.cu); only defined when built with CUDA.
struct CudaBeamJob {
  const impl::Box* box;
  const float* density;           ///< box layout
  const std::uint16_t* q;
  impl::GridGeom geom;
  impl::BeamFrame frame;
  impl::Spectrum spectrum;
  impl::FluencePlane plane;       ///< data points to host memory
  float src_idx[3];
  float density_threshold;
  const impl::Direction* dirs;
  int n_dirs;
  const float* lut;
  float* dose_out;                ///< host, box layout, overwritten
  int device;
};
void beam_dose_cuda(const CudaBeamJob& job);
int cuda_devices();

/// A batch of influence-matrix beamlets for the GPU: each beamlet has its own sub-box (only
/// its sizes n[] are used) with quantised density and TERMA in box layout (host memory); the
/// collapsed-cone transport of all of them runs together and the dose is copied back.
struct CudaInfluenceBatch {
  int n;                                ///< number of beamlets
  const impl::Box* boxes;
  const std::uint16_t* const* q;
  const float* const* ta;
  const float* const* tb;
  float* const* dose_out;               ///< host, box layout, overwritten
  const impl::Direction* dirs;
  int n_dirs;
  const float* lut;
  int device;
};
void influence_batch_cuda(const CudaInfluenceBatch& job);

}  // namespace isoline::dose::detail
