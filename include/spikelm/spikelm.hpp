// spikelm: the umbrella header — the only one a consumer needs.
#ifndef SPIKELM_SPIKELM_HPP
#define SPIKELM_SPIKELM_HPP

#include "config.hpp"

#include "core/error.hpp"
#include "core/linalg.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"

#include "simd/compat.hpp"
#include "simd/elementwise.hpp"
#include "simd/reduce.hpp"
#include "simd/rowwise.hpp"

#include "spike/accumulate.hpp"
#include "spike/spike_tensor.hpp"

#include "neuron/egru_unit.hpp"
#include "neuron/multistep.hpp"
#include "neuron/neurons.hpp"
#include "neuron/rates.hpp"
#include "neuron/surrogate.hpp"

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "autograd/parameter.hpp"
#include "autograd/tape.hpp"

#include "equilibrium/implicit.hpp"
#include "equilibrium/solvers.hpp"
#include "equilibrium/spiking_layer.hpp"

#include "train/guard.hpp"
#include "train/optim.hpp"

#include "io/checkpoint.hpp"
#include "io/dataset.hpp"
#include "io/file.hpp"
#include "io/json.hpp"
#include "io/safetensors.hpp"
#include "io/tokenizer.hpp"
#include "io/utf8.hpp"

#include "models/bert.hpp"
#include "models/egru_layer.hpp"
#include "models/egru_lm.hpp"
#include "models/spike_gpt.hpp"
#include "models/spiking_bert.hpp"

#include "metrics/egru.hpp"
#include "metrics/energy.hpp"
#include "metrics/firing.hpp"
#include "metrics/ops.hpp"
#include "metrics/perplexity.hpp"
#include "metrics/report.hpp"
#include "metrics/spike_gpt.hpp"
#include "metrics/spiking_bert.hpp"

#endif // SPIKELM_SPIKELM_HPP
